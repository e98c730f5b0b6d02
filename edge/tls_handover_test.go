package edge

import (
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"selfhost.dev/edgeapp/internal/testserver"
)

// inheritedSockets stands for the Upgrader between two processes: each
// Listen hands out a copy (a new file descriptor) of the same listening
// socket, as tableflip passes it to the new process. Closing one copy
// leaves the socket open in the other.
type inheritedSockets struct {
	t     testing.TB
	mu    sync.Mutex
	socks map[string]*net.TCPListener
	asked []string
}

func (s *inheritedSockets) listen(name, network, addr string) (net.Listener, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.asked = append(s.asked, name)
	f, err := s.socks[name].File()
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return net.FileListener(f)
}

// With `tls:`, an upgrade hands the TLS and http_listen sockets over like
// the public one: the new process serves them with the stored certificates
// (the stored certificates), and once it is ready the old process stops accepting on
// them at once (no new connection reaches it while it drains) while the
// sockets stay open for the new one.
func TestAutoTLSHandover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Pebble")
	}
	tlsLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	httpLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tlsLn.Close()
	defer httpLn.Close()
	tlsAddr, httpAddr := tlsLn.Addr().String(), httpLn.Addr().String()
	tp, _ := strconv.Atoi(port(tlsAddr))
	hp, _ := strconv.Atoi(port(httpAddr))
	p := testserver.StartPebble(t, testserver.PebbleConfig{TLSPort: tp, HTTPPort: hp})
	socks := &inheritedSockets{t: t, socks: map[string]*net.TCPListener{"tls": tlsLn.(*net.TCPListener), "http": httpLn.(*net.TCPListener)}}
	upOld, upNew := newUpstream(t), newUpstream(t)
	store := t.TempDir()
	env := func(up string) map[string]string {
		return map[string]string{"CA": p.DirectoryURL, "CA_ROOT": p.CARootFile, "STORE": store, "UP": up, "WS": up}
	}

	old := startTLSEdgeOpts(t, tlsYAML("a.edge.test", ""), env(upOld.URL), tlsAddr, httpAddr, Options{Listen: socks.listen})
	first := old.waitCert(t, p, "a.edge.test")
	if got := socks.asked; len(got) != 2 || got[0] != "tls" || got[1] != "http" {
		t.Fatalf("the TLS listeners were not asked of the listener source: %v", got)
	}
	roots := p.IssuingRoots(t)

	// A client with an HTTP/2 connection to the old process (made before
	// the new one accepts on the same socket).
	kept := old.h2Client(roots)
	defer kept.CloseIdleConnections()
	if res, err := kept.Get("https://a.edge.test:" + port(tlsAddr) + "/"); err != nil {
		t.Fatal(err)
	} else {
		seenBy(t, res)
	}

	// The new process also serves b.edge.test: the :80 answer for it
	// tells the two apart (the old one does not know the name: 404).
	nu := startTLSEdgeOpts(t, tlsYAML("a.edge.test, b.edge.test", ""), env(upNew.URL), tlsAddr, httpAddr, Options{Listen: socks.listen})
	if c := nu.waitCert(t, p, "a.edge.test"); c.SerialNumber.Cmp(first.SerialNumber) != 0 {
		t.Errorf("the new process serves serial %v, want the stored %v", c.SerialNumber, first.SerialNumber)
	}

	old.Handover()
	deadline := time.Now().Add(5 * time.Second)
	for !old.draining.Load() {
		if time.Now().After(deadline) {
			t.Fatal("the old process does not drain")
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // the accept loops see their listeners closed
	// Its next request is answered by the old process with a GOAWAY (the
	// HTTP/2 form of Connection: close); the one after reaches the new one.
	for i, want := range []*upstream{upOld, upNew} {
		before := want.hits.Load()
		res, err := kept.Get("https://a.edge.test:" + port(tlsAddr) + "/")
		if err != nil {
			t.Fatalf("kept connection, request %d: %v", i, err)
		}
		seenBy(t, res)
		if want.hits.Load() == before {
			t.Errorf("kept connection, request %d: not answered by the %s process", i, map[int]string{0: "old", 1: "new"}[i])
		}
	}
	fresh := func() *http.Client {
		c := nu.h2Client(roots)
		c.Transport.(*http.Transport).DisableKeepAlives = true
		return c
	}
	// While the old process drains (handoverCloseFor), every new
	// connection reaches the new one, on both ports.
	oldHits := upOld.hits.Load()
	for i := range 20 {
		res, err := fresh().Get("https://a.edge.test:" + port(tlsAddr) + "/")
		if err != nil {
			t.Fatalf("TLS request %d during the handover: %v", i, err)
		}
		if seenBy(t, res); res.ProtoMajor != 2 {
			t.Errorf("proto %s", res.Proto)
		}
		res, err = fresh().Get("http://b.edge.test:" + port(httpAddr) + "/x")
		if err != nil {
			t.Fatalf("http request %d during the handover: %v", i, err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusPermanentRedirect {
			t.Errorf("http_listen request %d answered %d: by the old process", i, res.StatusCode)
		}
	}
	if n := upOld.hits.Load() - oldHits; n != 0 {
		t.Errorf("%d TLS connections reached the old process after the handover", n)
	}
	old.shutdown(t)
	// The old process is gone; the sockets serve on.
	res, err := fresh().Get("https://a.edge.test:" + port(tlsAddr) + "/")
	if err != nil {
		t.Fatalf("after the old process exited: %v", err)
	}
	seenBy(t, res)
	if testing.Verbose() {
		_, _ = os.Stderr.WriteString(nu.log.String())
	}
}
