package edge

import (
	"net/http"
	"strings"
)

// dropUnderscoreHeaders removes the header fields whose names hold '_', as
// nginx does with underscores_in_headers off (the default; the top-level
// underscores_in_headers: true keeps them). CGI, WSGI and PHP backends map
// X_Forwarded_For and X-Forwarded-For to the same variable, so a client
// could otherwise set what the edge sets or checks under another spelling.
func dropUnderscoreHeaders(h http.Header) {
	for name := range h {
		if strings.IndexByte(name, '_') >= 0 {
			delete(h, name)
		}
	}
}
