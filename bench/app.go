package bench

import (
	"context"
	"database/sql"
	"fmt"
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
// documents of generated text, and returns the words they use. The schema
// is the app's own (sqlite.Open migrates it); the rows go in through one
// transaction with synchronous=OFF, because 100 000 documents through the
// API, or one transaction each, would take longer than the whole benchmark.
// The adapter's Index then checks that a search finds them.
func SeedDocuments(ctx context.Context, dataDir string, n int) ([]string, error) {
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	path := filepath.Join(dataDir, appDBName)
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	db.Close()
	raw, err := sql.Open("sqlite", path+"?_pragma=journal_mode(WAL)&_pragma=synchronous(OFF)")
	if err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	defer raw.Close()
	words := vocabulary(3000)
	rng := rand.New(rand.NewPCG(1, 2))
	tx, err := raw.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	defer tx.Rollback()
	docStmt, err := tx.PrepareContext(ctx, `INSERT INTO documents (filename, document_type, content_type, size, sha256, storage_path, created_at)
		VALUES (?, ?, 'text/plain', ?, ?, ?, ?) RETURNING id`)
	if err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	ftsStmt, err := tx.PrepareContext(ctx, `INSERT INTO documents_fts (rowid, filename, text, document_type) VALUES (?, ?, ?, ?)`)
	if err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	types := []string{"invoice", "contract", "report", "letter"}
	now := time.Now().UnixNano()
	var text strings.Builder
	for i := range n {
		text.Reset()
		for j := range 60 {
			if j > 0 {
				text.WriteByte(' ')
			}
			text.WriteString(words[rng.IntN(len(words))])
		}
		name := words[rng.IntN(len(words))] + "-" + strconv.Itoa(i) + ".txt"
		typ := types[i%len(types)]
		var id int64
		if err := docStmt.QueryRowContext(ctx, name, typ, text.Len(), fmt.Sprintf("%064x", i),
			"bench/"+strconv.Itoa(i), now).Scan(&id); err != nil {
			return nil, fmt.Errorf("seed document %d: %w", i, err)
		}
		if _, err := ftsStmt.ExecContext(ctx, id, name, text.String(), typ); err != nil {
			return nil, fmt.Errorf("seed index %d: %w", i, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	raw.Close()
	db, err = sqlite.Open(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("seed check: %w", err)
	}
	defer db.Close()
	res, err := sqlite.NewIndex(db).SearchDocuments(ctx, app.SearchQuery{Q: words[7], Limit: 10})
	if err != nil {
		return nil, fmt.Errorf("seed check: %w", err)
	}
	if res.Total == 0 {
		return nil, fmt.Errorf("seed check: no document matches %q", words[7])
	}
	return words, nil
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
	if p, err := e.startProxy(ctx, Edge, dir, "", true, port, "edge/routes-app.yaml.tmpl"); err != nil {
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
