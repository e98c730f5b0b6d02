//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"selfhost.dev/edgeapp/internal/testserver"
)

// A minimal Chrome DevTools Protocol client: enough to drive a page as a
// user would (type, click, pick a file), read the DOM and take
// screenshots. It speaks CDP's JSON over the browser's websocket with one
// flattened session per page, so no CDP library is needed.

// cdpMessage is a command's answer or an event.
type cdpMessage struct {
	ID        int64           `json:"id,omitempty"`
	Method    string          `json:"method,omitempty"`
	Params    json.RawMessage `json:"params,omitempty"`
	Result    json.RawMessage `json:"result,omitempty"`
	Error     *cdpError       `json:"error,omitempty"`
	SessionID string          `json:"sessionId,omitempty"`
}

type cdpError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Data    string `json:"data,omitempty"`
}

func (e *cdpError) Error() string {
	return fmt.Sprintf("cdp error %d: %s %s", e.Code, e.Message, e.Data)
}

// browser is a running Chromium and the websocket to it.
type browser struct {
	t    *testing.T
	conn *websocket.Conn

	mu      sync.Mutex
	nextID  int64
	pending map[int64]chan cdpMessage
	subs    map[string][]chan cdpMessage // by event method
}

var devtoolsURL = regexp.MustCompile(`DevTools listening on (ws://\S+)`)

// startBrowser runs headless Chromium on a fresh profile, its output in
// logPath, and connects to its DevTools websocket. It is stopped when the
// test ends.
func startBrowser(t *testing.T, logPath string) *browser {
	t.Helper()
	chromium := ""
	for _, name := range []string{"chromium", "/usr/bin/chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			chromium = p
			break
		}
	}
	if chromium == "" {
		testserver.Skip(t, "chromium not found: apt-get install chromium")
	}
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(chromium,
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-extensions", "--disable-default-apps", "--no-default-browser-check",
		"--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication",
		// Nothing but loopback resolves: the browser cannot leave the machine.
		"--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
		"--user-data-dir="+t.TempDir(),
		"--remote-debugging-port=0",
		"--window-size=1100,900",
		"about:blank",
	)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = logFile
	if err := cmd.Start(); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	wsURL := make(chan string, 1)
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		sc := bufio.NewScanner(stderr)
		sent := false
		for sc.Scan() {
			fmt.Fprintln(logFile, sc.Text())
			if m := devtoolsURL.FindStringSubmatch(sc.Text()); m != nil && !sent {
				wsURL <- m[1]
				sent = true
			}
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		<-drained
		logFile.Close()
	})
	var u string
	select {
	case u = <-wsURL:
	case <-time.After(60 * time.Second):
		t.Fatalf("chromium printed no DevTools URL in 60s; see %s", logPath)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, u, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", u, err)
	}
	conn.SetReadLimit(64 << 20) // full-page screenshots come back as one message
	b := &browser{t: t, conn: conn, pending: map[int64]chan cdpMessage{}, subs: map[string][]chan cdpMessage{}}
	go b.readLoop()
	t.Cleanup(func() { conn.CloseNow() })
	return b
}

// readLoop hands answers to their callers and events to subscribers.
func (b *browser) readLoop() {
	for {
		_, data, err := b.conn.Read(context.Background())
		if err != nil {
			b.mu.Lock()
			for id, ch := range b.pending {
				close(ch)
				delete(b.pending, id)
			}
			b.mu.Unlock()
			return
		}
		var m cdpMessage
		if json.Unmarshal(data, &m) != nil {
			continue
		}
		b.mu.Lock()
		if m.ID != 0 {
			if ch, ok := b.pending[m.ID]; ok {
				ch <- m
				delete(b.pending, m.ID)
			}
		} else {
			for _, ch := range b.subs[m.Method] {
				select {
				case ch <- m:
				default: // a subscriber that fell behind loses events, never blocks the reader
				}
			}
		}
		b.mu.Unlock()
	}
}

// subscribe returns a channel of the events named method (of every session).
func (b *browser) subscribe(method string) chan cdpMessage {
	ch := make(chan cdpMessage, 256)
	b.mu.Lock()
	b.subs[method] = append(b.subs[method], ch)
	b.mu.Unlock()
	return ch
}

// call sends a command (to a page when session is set) and decodes its
// result into out, if not nil.
func (b *browser) call(session, method string, params, out any) error {
	b.mu.Lock()
	b.nextID++
	id := b.nextID
	ch := make(chan cdpMessage, 1)
	b.pending[id] = ch
	b.mu.Unlock()
	if params == nil {
		params = struct{}{}
	}
	p, err := json.Marshal(params)
	if err != nil {
		return err
	}
	msg, _ := json.Marshal(cdpMessage{ID: id, Method: method, Params: p, SessionID: session})
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	if err := b.conn.Write(ctx, websocket.MessageText, msg); err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	select {
	case m, ok := <-ch:
		if !ok {
			return fmt.Errorf("%s: the browser connection closed", method)
		}
		if m.Error != nil {
			return fmt.Errorf("%s: %w", method, m.Error)
		}
		if out != nil {
			return json.Unmarshal(m.Result, out)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%s: no answer in %s", method, deadline)
	}
}

// page is one tab, driven through its own session.
type page struct {
	b       *browser
	t       *testing.T
	session string
}

// newPage opens a blank tab and enables the domains the test watches.
func (b *browser) newPage() *page {
	b.t.Helper()
	var target struct {
		TargetID string `json:"targetId"`
	}
	if err := b.call("", "Target.createTarget", map[string]any{"url": "about:blank"}, &target); err != nil {
		b.t.Fatal(err)
	}
	var att struct {
		SessionID string `json:"sessionId"`
	}
	if err := b.call("", "Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true}, &att); err != nil {
		b.t.Fatal(err)
	}
	p := &page{b: b, t: b.t, session: att.SessionID}
	for _, d := range []string{"Page.enable", "Runtime.enable", "Log.enable"} {
		p.call(d, nil, nil)
	}
	return p
}

func (p *page) call(method string, params, out any) {
	p.t.Helper()
	if err := p.b.call(p.session, method, params, out); err != nil {
		p.t.Fatal(err)
	}
}

// navigate loads url and waits for its load event.
func (p *page) navigate(url string) {
	p.t.Helper()
	loaded := p.b.subscribe("Page.loadEventFired")
	var nav struct {
		ErrorText string `json:"errorText"`
	}
	p.call("Page.navigate", map[string]any{"url": url}, &nav)
	if nav.ErrorText != "" {
		p.t.Fatalf("navigate %s: %s", url, nav.ErrorText)
	}
	select {
	case <-loaded:
	case <-time.After(deadline):
		p.t.Fatalf("navigate %s: no load event", url)
	}
}

// eval runs a JavaScript expression (awaiting a promise) and decodes its
// value into out, if not nil.
func (p *page) eval(expr string, out any) {
	p.t.Helper()
	var r struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text      string `json:"text"`
			Exception struct {
				Description string `json:"description"`
			} `json:"exception"`
		} `json:"exceptionDetails"`
	}
	p.call("Runtime.evaluate", map[string]any{"expression": expr, "awaitPromise": true, "returnByValue": true}, &r)
	if r.ExceptionDetails != nil {
		p.t.Fatalf("eval %s: %s %s", expr, r.ExceptionDetails.Text, r.ExceptionDetails.Exception.Description)
	}
	if out != nil {
		if err := json.Unmarshal(r.Result.Value, out); err != nil {
			p.t.Fatalf("eval %s: result %s: %v", expr, r.Result.Value, err)
		}
	}
}

func (p *page) text(selector string) string {
	p.t.Helper()
	var s string
	p.eval(fmt.Sprintf(`document.querySelector(%q).textContent`, selector), &s)
	return s
}

// waitText waits until selector's text contains want and returns the text.
func (p *page) waitText(selector, want string) string {
	p.t.Helper()
	stop := time.Now().Add(deadline)
	for {
		got := p.text(selector)
		if strings.Contains(got, want) {
			return got
		}
		if time.Now().After(stop) {
			p.t.Fatalf("%s never said %q; it says %q", selector, want, got)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// center scrolls selector into view and returns its middle, in CSS pixels.
func (p *page) center(selector string) (x, y float64) {
	p.t.Helper()
	var c struct{ X, Y float64 }
	p.eval(fmt.Sprintf(`(() => { const e = document.querySelector(%q); e.scrollIntoView({block: "center"});
		const r = e.getBoundingClientRect(); return {X: r.x + r.width / 2, Y: r.y + r.height / 2}; })()`, selector), &c)
	return c.X, c.Y
}

// click presses and releases the mouse over selector, as a user does.
func (p *page) click(selector string) {
	p.t.Helper()
	x, y := p.center(selector)
	for _, typ := range []string{"mousePressed", "mouseReleased"} {
		p.call("Input.dispatchMouseEvent", map[string]any{"type": typ, "x": x, "y": y, "button": "left", "clickCount": 1}, nil)
	}
}

// fill clicks into a field, clears it and types text.
func (p *page) fill(selector, text string) {
	p.t.Helper()
	p.click(selector)
	p.eval(fmt.Sprintf(`(() => { const e = document.querySelector(%q); e.select(); })()`, selector), nil)
	p.call("Input.dispatchKeyEvent", map[string]any{"type": "keyDown", "key": "Backspace", "code": "Backspace", "windowsVirtualKeyCode": 8}, nil)
	p.call("Input.dispatchKeyEvent", map[string]any{"type": "keyUp", "key": "Backspace", "code": "Backspace", "windowsVirtualKeyCode": 8}, nil)
	if text != "" {
		p.call("Input.insertText", map[string]any{"text": text}, nil)
	}
	var got string
	p.eval(fmt.Sprintf(`document.querySelector(%q).value`, selector), &got)
	if got != text {
		p.t.Fatalf("typed %q into %s, it holds %q", text, selector, got)
	}
}

// setFiles picks files in a file input, as the file chooser would.
func (p *page) setFiles(selector string, files ...string) {
	p.t.Helper()
	var r struct {
		Result struct {
			ObjectID string `json:"objectId"`
		} `json:"result"`
	}
	p.call("Runtime.evaluate", map[string]any{"expression": fmt.Sprintf(`document.querySelector(%q)`, selector)}, &r)
	p.call("DOM.setFileInputFiles", map[string]any{"files": files, "objectId": r.Result.ObjectID}, nil)
}

// screenshot writes the whole page as a PNG to path.
func (p *page) screenshot(path string) {
	p.t.Helper()
	var m struct {
		CSSContentSize struct{ Width, Height float64 } `json:"cssContentSize"`
	}
	p.call("Page.getLayoutMetrics", nil, &m)
	var shot struct {
		Data string `json:"data"`
	}
	p.call("Page.captureScreenshot", map[string]any{
		"format": "png", "captureBeyondViewport": true,
		"clip": map[string]any{"x": 0, "y": 0, "width": m.CSSContentSize.Width, "height": m.CSSContentSize.Height, "scale": 1},
	}, &shot)
	png, err := base64.StdEncoding.DecodeString(shot.Data)
	if err != nil {
		p.t.Fatal(err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		p.t.Fatal(err)
	}
	p.t.Logf("screenshot %s (%d bytes)", path, len(png))
}
