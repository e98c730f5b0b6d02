package upstream

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
)

// sticky signs and reads the Cookie policy's cookie. Its value is
// id.mac: id names an upstream without revealing its address (a hash of
// it), mac is an HMAC-SHA256 of the route and id under the secret. A
// cookie whose mac does not verify is ignored, so a client cannot pick
// an upstream the edge did not give it.
type sticky struct {
	name   string
	route  string
	secret []byte
}

// id is the cookie's name for u.
func stickyID(u *Upstream) string {
	sum := sha256.Sum256([]byte(u.key))
	return hex.EncodeToString(sum[:8])
}

func (c *sticky) mac(id string) string {
	m := hmac.New(sha256.New, c.secret)
	m.Write([]byte(c.route))
	m.Write([]byte{0})
	m.Write([]byte(id))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// value is the cookie value that sends a browser to u.
func (c *sticky) value(u *Upstream) string {
	id := stickyID(u)
	return id + "." + c.mac(id)
}

// lookup returns the index in s of the upstream req's valid cookie names,
// or -1.
func (c *sticky) lookup(req *http.Request, s *set) int {
	if c == nil {
		return -1
	}
	ck, err := req.Cookie(c.name)
	if err != nil {
		return -1
	}
	v := ck.Value
	if len(v) < 18 || v[16] != '.' {
		return -1
	}
	id, mac := v[:16], v[17:]
	if !hmac.Equal([]byte(mac), []byte(c.mac(id))) {
		return -1
	}
	for i, u := range s.ups {
		if stickyID(u) == id {
			return i
		}
	}
	return -1
}

// setCookie adds the cookie for u to res unless req already had it.
func (c *sticky) setCookie(req *http.Request, res *http.Response, u *Upstream) {
	v := c.value(u)
	if ck, err := req.Cookie(c.name); err == nil && ck.Value == v {
		return
	}
	// A session cookie, for the whole site: the browser keeps its upstream
	// until it closes.
	hc := &http.Cookie{Name: c.name, Value: v, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode}
	res.Header.Add("Set-Cookie", hc.String())
}
