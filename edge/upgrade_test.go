package edge

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// keepAlive is a client connection that sends requests one by one.
type keepAlive struct {
	c  net.Conn
	br *bufio.Reader
}

func dialKeepAlive(t *testing.T, addr string) *keepAlive {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &keepAlive{c: c, br: bufio.NewReader(c)}
}

// get sends a GET and returns the response, its body read.
func (k *keepAlive) get(t *testing.T) (*http.Response, error) {
	t.Helper()
	_ = k.c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(k.c, "GET /x HTTP/1.1\r\nHost: edge.test\r\n\r\n"); err != nil {
		return nil, err
	}
	res, err := http.ReadResponse(k.br, nil)
	if err != nil {
		return nil, err
	}
	_, err = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res, err
}

// Once a new process serves, the old one stops accepting and, for
// handoverCloseFor, answers every request with Connection: close: on busy
// connections, parked ones (memory.go) and idle ones alike. Then it closes
// the connections that stayed silent and Serve returns.
func TestHandoverAsksClientsToReconnect(t *testing.T) {
	up := newUpstream(t)
	e := startEdge(t, "routes:\n  - { path: /, to: \"${UP}\" }\n", map[string]string{"UP": up.URL})
	busy, parked, silent := dialKeepAlive(t, e.addr), dialKeepAlive(t, e.addr), dialKeepAlive(t, e.addr)
	for _, k := range []*keepAlive{busy, parked, silent} {
		res, err := k.get(t)
		if err != nil || res.StatusCode != 200 || res.Close {
			t.Fatalf("before the handover: %v %v", res, err)
		}
	}
	time.Sleep(parkAfter + 200*time.Millisecond) // parked and silent are parked now
	if res, err := busy.get(t); err != nil || res.Close {
		t.Fatalf("before the handover: %v %v", res, err)
	}
	start := time.Now()
	e.Handover()
	e.Handover() // a second call does nothing
	time.Sleep(50 * time.Millisecond)
	for name, k := range map[string]*keepAlive{"busy": busy, "parked": parked} {
		res, err := k.get(t)
		if err != nil || res.StatusCode != 200 || !res.Close {
			t.Errorf("%s connection during the handover: %v %v", name, res, err)
		}
		if _, err := k.br.ReadByte(); err != io.EOF {
			t.Errorf("%s connection: not closed after Connection: close: %v", name, err)
		}
	}
	if c, err := net.DialTimeout("tcp", e.addr, time.Second); err == nil {
		c.Close()
		t.Error("still accepting after the handover")
	}
	// The silent one is closed once the moment is over, not before.
	_ = silent.c.SetReadDeadline(time.Now().Add(handoverCloseFor + 2*time.Second))
	_, err := silent.br.ReadByte()
	if d := time.Since(start); !errors.Is(err, io.EOF) || d < handoverCloseFor {
		t.Errorf("silent connection: %v after %s", err, d)
	}
	select {
	case err := <-e.done:
		if err != nil {
			t.Errorf("serve: %v", err)
		}
		e.done <- nil // for the cleanup's shutdown
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after the handover")
	}
}

func TestSystemdFilesRefusals(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	for _, c := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{}, ""},
		{map[string]string{"LISTEN_PID": "1", "LISTEN_FDS": "2"}, ""}, // another process's
		{map[string]string{"LISTEN_PID": "42", "LISTEN_FDS": "0"}, ""},
		{map[string]string{"LISTEN_PID": "42", "LISTEN_FDS": "x"}, `systemd: bad LISTEN_FDS "x"`},
		{map[string]string{"LISTEN_PID": "42", "LISTEN_FDS": "2", "LISTEN_FDNAMES": "public"},
			`systemd: 2 sockets but LISTEN_FDNAMES "public": name them public and admin with FileDescriptorName=`},
	} {
		files, err := systemdFiles(env(c.env), 42)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != c.want || len(files) != 0 {
			t.Errorf("%v: %d files, %q; want %q", c.env, len(files), got, c.want)
		}
	}
}

func TestAccessLogCarriesPID(t *testing.T) {
	b := appendEntry(nil, &logEntry{start: time.Now()})
	if !strings.HasSuffix(string(b), `,"pid":`+processID+"}\n") {
		t.Errorf("%s", b)
	}
}

// POST /-/upgrade answers 500 with the reason when the new process fails,
// 409 while this process hands over, and always asks to close the
// connection, so the next request reaches whichever process serves then.
func TestUpgradeEndpoint(t *testing.T) {
	cfg, err := Load(strings.NewReader("routes:\n  - { path: /, to: \"http://127.0.0.1:1\" }\n"), envLookup(nil))
	if err != nil {
		t.Fatal(err)
	}
	fail := errors.New("upgrade: child pid=7 exited: exit status 1")
	s, err := New(cfg, Options{AccessLog: io.Discard, Upgrade: func(context.Context) error { return fail }})
	if err != nil {
		t.Fatal(err)
	}
	h := s.AdminHandler()
	post := func() *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/-/upgrade", nil))
		return w
	}
	w := post()
	if w.Code != 500 || !strings.Contains(w.Body.String(), "this process keeps serving:\n"+fail.Error()) || w.Header().Get("Connection") != "close" {
		t.Errorf("failed upgrade: %d %q %v", w.Code, w.Body, w.Header())
	}
	fail = nil
	if w := post(); w.Code != 200 || !strings.HasPrefix(w.Body.String(), "upgraded: ") {
		t.Errorf("upgrade: %d %q", w.Code, w.Body)
	}
	s.draining.Store(true)
	if w := post(); w.Code != 409 || w.Header().Get("Connection") != "close" {
		t.Errorf("while handing over: %d %q", w.Code, w.Body)
	}
	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	if w.Code != 200 || w.Header().Get("Connection") != "close" {
		t.Errorf("healthz while handing over: %d %v", w.Code, w.Header())
	}
	// Without an Upgrade option there is no endpoint.
	s2, err := New(cfg, Options{AccessLog: io.Discard, Registry: nil})
	if err != nil {
		t.Fatal(err)
	}
	w = httptest.NewRecorder()
	s2.AdminHandler().ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/-/upgrade", nil))
	if w.Code != 404 {
		t.Errorf("without Upgrade: %d", w.Code)
	}
}
