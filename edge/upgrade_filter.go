package edge

import (
	"errors"
	"net/http"
	"net/textproto"
	"strings"
)

// Only websocket upgrades are tunnelled. Any other Upgrade token would let
// an upstream that accepts it turn the client's connection into a raw
// tunnel past the edge: with "Upgrade: h2c" an upstream switching to
// HTTP/2 gives the client a connection on which it can ask for any path,
// routed or guarded or not (Traefik CVE-2026-88008). So the edge forwards
// Upgrade only when it asks for a websocket; otherwise it drops Upgrade and
// the headers Connection names for it (HTTP2-Settings) and serves the
// request as an ordinary one. A 101 that does not switch to websocket is
// refused whatever was asked (errNotWebsocket).

// websocketUpgrade is the Upgrade value forwarded for a websocket request:
// the one token, whatever else the client listed.
var websocketUpgrade = []string{"websocket"}

// errNotWebsocket is returned for a 101 response that does not switch to
// websocket: it never becomes a tunnel.
var errNotWebsocket = errors.New("upstream switched to a protocol other than websocket")

// filterUpgrade rewrites the header of r, an incoming request, so that the
// only upgrade it asks for is websocket, on a GET (RFC 6455) from an
// HTTP/1.1 client: a server must ignore Upgrade in an HTTP/1.0 request and
// may not send it a 1xx (RFC 9110 §7.8, §15.2).
func filterUpgrade(r *http.Request) {
	h := r.Header
	up, ok := h["Upgrade"]
	if !ok {
		return
	}
	if r.Method == http.MethodGet && r.ProtoAtLeast(1, 1) && hasToken(up, "websocket") {
		h["Upgrade"] = websocketUpgrade
		return
	}
	delete(h, "Upgrade")
	// HTTP2-Settings goes even when Connection does not name it: it only
	// means anything with an h2c upgrade.
	delete(h, "Http2-Settings")
	conn := h["Connection"]
	var keep []string
	for _, v := range conn {
		for tok := range strings.SplitSeq(v, ",") {
			tok = textproto.TrimString(tok)
			if tok == "" {
				continue
			}
			if strings.EqualFold(tok, "upgrade") || strings.EqualFold(tok, "http2-settings") {
				continue
			}
			// A header the client made hop-by-hop goes, as ReverseProxy
			// would drop it anyway; the token stays so it still does.
			keep = append(keep, tok)
		}
	}
	if conn != nil {
		if len(keep) == 0 {
			delete(h, "Connection")
		} else {
			h["Connection"] = []string{strings.Join(keep, ", ")}
		}
	}
}

// hasToken reports whether the comma-separated lists in values hold token,
// ignoring ASCII case.
func hasToken(values []string, token string) bool {
	for _, v := range values {
		for tok := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(textproto.TrimString(tok), token) {
				return true
			}
		}
	}
	return false
}

// checkSwitch refuses a 101 response that does not switch to websocket
// alone, whichever transport carried it: such a response is never
// tunnelled.
func checkSwitch(res *http.Response) error {
	if res.StatusCode != http.StatusSwitchingProtocols {
		return nil
	}
	up := res.Header["Upgrade"]
	if len(up) != 1 || !strings.EqualFold(textproto.TrimString(up[0]), "websocket") {
		return errNotWebsocket
	}
	if res.Request == nil || !hasToken(res.Request.Header["Upgrade"], "websocket") {
		return errNotWebsocket
	}
	return nil
}
