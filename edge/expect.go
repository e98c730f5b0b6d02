package edge

import (
	"net/http"
	"strings"
)

// closeIfBodyUnsent marks a final answer "Connection: close" when the
// client asked Expect: 100-continue and not a byte of its body has been
// read: the request was refused on its headers, by the upstream or by the
// edge.
//
// Why: net/http's server, writing an answer while the body it handed the
// handler is unread, first discards up to 256 KiB of it unless the
// connection is to close. With Expect that read waits for a body the
// client will not send before a 100 Continue, so the answer would hang
// until the client gives up and sends the body it was refused. Closing
// lets the client read the refusal without sending anything, as it does
// when talking to a net/http upstream directly.
func closeIfBodyUnsent(h http.Header, b *limitedBody) {
	if b != nil && b.expect && b.n.Load() == 0 {
		h.Set("Connection", "close")
	}
}

// expectsContinue reports whether r asks for a 100 Continue before its body.
func expectsContinue(r *http.Request) bool {
	for _, t := range strings.Split(r.Header.Get("Expect"), ",") {
		if strings.EqualFold(strings.TrimSpace(t), "100-continue") {
			return true
		}
	}
	return false
}
