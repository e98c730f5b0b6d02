package edge

import "net/http"

// closeConnAfter asks an HTTP/1.x client to close its connection after
// this answer, so that net/http neither reads nor waits for the rest of a
// refused body. Over HTTP/2 it does nothing: net/http turns Connection:
// close into a GOAWAY for the whole connection, cutting off every stream
// the client multiplexes on it, while the refused stream alone is ended
// (RST_STREAM) when the handler returns, its body unread.
//
// A handover (closeAfter) wants the GOAWAY and sets the header itself.
func closeConnAfter(h http.Header, r *http.Request) {
	if r.ProtoMajor == 1 {
		h.Set("Connection", "close")
	}
}
