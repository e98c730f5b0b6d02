package bench

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"selfhost.dev/edgeapp/app"
	"selfhost.dev/edgeapp/app/sqlite"
)

// appDBName is where cmd/app keeps its SQLite database under DATA_DIR.
const appDBName = "app.db"

// vocabulary makes n pronounceable distinct words, the same on every run.
func vocabulary(n int) []string {
	cons := []string{"b", "c", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z"}
	vows := []string{"a", "e", "i", "o", "u"}
	words := make([]string, 0, n)
	for i := 0; len(words) < n; i++ {
		var b strings.Builder
		for j, x := 0, i; j < 3; j++ {
			b.WriteString(cons[x%len(cons)])
			x /= len(cons)
			b.WriteString(vows[x%len(vows)])
			x /= len(vows)
		}
		words = append(words, b.String())
	}
	return words
}

// SeedDocuments fills the app's database under dataDir with n indexed
// documents of generated text, and returns the words they use. It goes
// through the adapter's own API (sqlite.Open, CreateDocument,
// sqlite.NewIndex and IndexDocument), so the schema is never guessed at;
// to keep 2n synchronous transactions fast it builds the file on tmpfs,
// where fsync costs nothing, and then copies it into dataDir.
func SeedDocuments(ctx context.Context, dataDir string, n int) ([]string, error) {
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	scratch, err := os.MkdirTemp(seedScratch(), "edgeapp-seed-")
	if err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	defer os.RemoveAll(scratch)
	path := filepath.Join(scratch, appDBName)
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	defer db.Close()
	idx := sqlite.NewIndex(db)
	words := vocabulary(3000)
	rng := rand.New(rand.NewPCG(1, 2))
	types := []string{"invoice", "contract", "report", "letter"}
	var text strings.Builder
	for i := range n {
		if i%1000 == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		text.Reset()
		for j := range 60 {
			if j > 0 {
				text.WriteByte(' ')
			}
			text.WriteString(words[rng.IntN(len(words))])
		}
		d := &app.Document{
			Filename: words[rng.IntN(len(words))] + "-" + strconv.Itoa(i) + ".txt", DocumentType: types[i%len(types)],
			ContentType: "text/plain", Size: int64(text.Len()), SHA256: fmt.Sprintf("%064x", i), StoragePath: "bench/" + strconv.Itoa(i),
		}
		if err := db.CreateDocument(ctx, d); err != nil {
			return nil, fmt.Errorf("seed document %d: %w", i, err)
		}
		if err := idx.IndexDocument(ctx, d, text.String()); err != nil {
			return nil, fmt.Errorf("seed index %d: %w", i, err)
		}
	}
	res, err := idx.SearchDocuments(ctx, app.SearchQuery{Q: words[7], Limit: 10})
	if err != nil {
		return nil, fmt.Errorf("seed check: %w", err)
	}
	if res.Total == 0 {
		return nil, fmt.Errorf("seed check: no document matches %q", words[7])
	}
	// Closing checkpoints the WAL into the file, so the file alone is the database.
	if err := db.Close(); err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	if err := copyFile(path, filepath.Join(dataDir, appDBName)); err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	return words, nil
}

// seedScratch is tmpfs when there is one.
func seedScratch() string {
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		return "/dev/shm"
	}
	return os.TempDir()
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// searchScript is a wrk script that cycles GET /documents/search through
// query words, each matching about 2% of the documents.
func searchScript(words []string, key string) string {
	var b strings.Builder
	b.WriteString("local words = {")
	for i, w := range words[:64] {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Quote(w))
	}
	b.WriteString("}\nlocal i = 0\nlocal headers = {[\"X-API-Key\"] = " + strconv.Quote(key) + "}\n")
	b.WriteString("request = function()\n  i = i + 1\n  return wrk.format(\"GET\", \"/documents/search?limit=10&q=\" .. words[(i % #words) + 1], headers)\nend\n")
	return b.String()
}

// contactScript is a wrk script that POSTs one valid contact per request.
func contactScript(key string) string {
	return `wrk.method = "POST"
wrk.body = '{"name":"Bench Mark","email":"bench@example.com","message":"A message from the benchmark harness, about as long as a real one."}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-API-Key"] = ` + strconv.Quote(key) + "\n"
}

// scenario6 puts the app (embedded defaults: SQLite, local blobs, built-in
// search) behind the edge and measures POST /contact and GET
// /documents/search, through the edge and direct.
func (e *Env) scenario6(ctx context.Context, opts Options) ([]*Table, error) {
	if _, ok := e.Bin["app"]; !ok {
		return nil, fmt.Errorf("app %s: %w", e.Missing["app"], errSkip)
	}
	dir, err := os.MkdirTemp(e.Dir, "s6-")
	if err != nil {
		return nil, fmt.Errorf("s6 dir: %w", err)
	}
	dataDir := filepath.Join(dir, "data")
	t0 := time.Now()
	words, err := SeedDocuments(ctx, dataDir, opts.Documents)
	if err != nil {
		return nil, err
	}
	e.Log("seeded %d documents in %v", opts.Documents, time.Since(t0).Round(time.Millisecond))
	key := randomHex(24)
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	mport, err := freePort()
	if err != nil {
		return nil, err
	}
	appProc, err := StartProc(ctx, ProcSpec{
		Name: "app", Argv: []string{e.Bin["app"]}, Port: port, Dir: dir,
		Env: []string{"APP_ADDR=127.0.0.1:" + strconv.Itoa(port), "METRICS_ADDR=127.0.0.1:" + strconv.Itoa(mport),
			"DATA_DIR=" + dataDir, "PUBLIC_API_KEY=" + key},
	})
	if err != nil {
		return nil, err
	}
	f := &Fleet{Dir: dir, Upstream: appProc, Proxies: map[string]*Proc{}, Skipped: map[string]string{}, Logs: true}
	defer f.Stop(opts.Keep)
	if p, err := e.startProxy(ctx, Edge, dir, "", 1, true, port, "edge/routes-app.yaml.tmpl", nil); err != nil {
		f.Skipped[Edge] = err.Error()
	} else {
		f.Proxies[Edge] = p
	}
	search := filepath.Join(dir, "search.lua")
	contact := filepath.Join(dir, "contact.lua")
	if err := os.WriteFile(search, []byte(searchScript(words, key)), 0o644); err != nil {
		return nil, fmt.Errorf("s6 script: %w", err)
	}
	if err := os.WriteFile(contact, []byte(contactScript(key)), 0o644); err != nil {
		return nil, fmt.Errorf("s6 script: %w", err)
	}
	const conns = 64
	var tables []*Table
	var cells []cell
	for _, ep := range []struct{ id, title, script, path string }{
		{"s6-search", "GET /documents/search", search, "/documents/search"},
		{"s6-contact", "POST /contact", contact, "/contact"},
	} {
		t := &Table{
			ID: ep.id, Scenario: 6, Layout: "unpinned", Logs: true, Conns: conns, Unit: "req/s", RefRow: "app direct",
			Title: fmt.Sprintf("Scenario 6: the app, %s, %d connections (%d documents, embedded SQLite)", ep.title, conns, opts.Documents),
			Notes: []string{"nothing pinned; the app runs with its default GOMAXPROCS, the edge with GOMAXPROCS=1",
				"CPU µs/req is the app's on the direct row and the edge's alone on the via-edge row"},
		}
		tables = append(tables, t)
		cells = append(cells,
			cell{table: t, target: Direct, row: "app direct", load: load{Path: ep.path, Script: ep.script}, conns: conns},
			cell{table: t, target: Edge, row: "app via edge", load: load{Path: ep.path, Script: ep.script}, conns: conns})
	}
	e.interleave(ctx, f, cells, opts.Rounds, opts.Duration)
	return tables, ctx.Err()
}
