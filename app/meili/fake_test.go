package meili_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeMeili is a protocol fake of Meilisearch, which cannot run on the
// machines these tests run on (there is no binary in Debian or the Go
// module proxy). It implements exactly the documented endpoints the
// adapter calls, with an in-memory store:
//
//	GET    /health
//	POST   /indexes                             {"uid","primaryKey"}
//	PATCH  /indexes/{uid}/settings              {"searchableAttributes","filterableAttributes"}
//	POST   /indexes/{uid}/documents?primaryKey= [{...}, ...]  (add or replace)
//	DELETE /indexes/{uid}/documents/{id}
//	GET    /tasks/{taskUid}
//	POST   /indexes/{uid}/search                {"q","limit","offset","filter","matchingStrategy",
//	                                             "showRankingScore","attributesToRetrieve",
//	                                             "attributesToHighlight","attributesToCrop","cropLength",
//	                                             "highlightPreTag","highlightPostTag"}
//
// It checks each request's shape (method, path, Content-Type, JSON fields,
// Authorization: Bearer <key>) and fails the test on anything else. Writes
// are asynchronous as in Meilisearch: they return an enqueued task that is
// applied when the client first polls it, and reported done on the next
// poll. Search is a simple model of Meilisearch's: every query word must
// match a word of a searchable attribute (the last one as a prefix), the
// score is higher the earlier the attribute, and no typo tolerance.
type fakeMeili struct {
	t   testing.TB
	key string
	srv *httptest.Server

	mu       sync.Mutex
	indexes  map[string]*fakeIndex
	tasks    map[int64]*fakeTask
	nextTask int64
	failNext int // the next n document tasks fail, as Meilisearch reports an internal error
	requests []string
}

type fakeIndex struct {
	primaryKey string
	searchable []string
	filterable []string
	docs       map[int64]map[string]any
	order      []int64 // insertion order, Meilisearch's tie-break
}

type fakeTask struct {
	info   map[string]any
	apply  func() (code, message string) // runs at the first poll
	polled int
}

func newFakeMeili(t testing.TB, key string) *fakeMeili {
	f := &fakeMeili{t: t, key: key, indexes: map[string]*fakeIndex{}, tasks: map[int64]*fakeTask{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serveHTTP))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeMeili) URL() string { return f.srv.URL }

// failDocumentTasks makes the next n document additions or deletions fail.
func (f *fakeMeili) failDocumentTasks(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failNext = n
}

var (
	indexPath    = regexp.MustCompile(`^/indexes/([a-zA-Z0-9_-]+)/(settings|documents|search)$`)
	documentPath = regexp.MustCompile(`^/indexes/([a-zA-Z0-9_-]+)/documents/([0-9]+)$`)
	taskPath     = regexp.MustCompile(`^/tasks/([0-9]+)$`)
)

func (f *fakeMeili) serveHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, r.Method+" "+r.URL.Path)
	if got := r.Header.Get("Authorization"); got != "Bearer "+f.key {
		f.t.Errorf("meilisearch fake: %s %s with Authorization %q, want the Bearer master key", r.Method, r.URL.Path, got)
		f.apiError(w, http.StatusUnauthorized, "invalid_api_key", "The provided API key is invalid.")
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodDelete {
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			f.t.Errorf("meilisearch fake: %s %s with Content-Type %q, want application/json", r.Method, r.URL.Path, ct)
		}
	}
	p := r.URL.Path
	switch {
	case r.Method == http.MethodGet && p == "/health":
		f.json(w, http.StatusOK, map[string]any{"status": "available"})
	case r.Method == http.MethodPost && p == "/indexes":
		f.createIndex(w, r)
	case r.Method == http.MethodGet && taskPath.MatchString(p):
		uid, _ := strconv.ParseInt(taskPath.FindStringSubmatch(p)[1], 10, 64)
		f.getTask(w, uid)
	case r.Method == http.MethodDelete && documentPath.MatchString(p):
		m := documentPath.FindStringSubmatch(p)
		id, _ := strconv.ParseInt(m[2], 10, 64)
		f.deleteDocument(w, m[1], id)
	case indexPath.MatchString(p):
		m := indexPath.FindStringSubmatch(p)
		switch {
		case r.Method == http.MethodPatch && m[2] == "settings":
			f.updateSettings(w, r, m[1])
		case r.Method == http.MethodPost && m[2] == "documents":
			f.addDocuments(w, r, m[1])
		case r.Method == http.MethodPost && m[2] == "search":
			f.search(w, r, m[1])
		default:
			f.unexpected(w, r)
		}
	default:
		f.unexpected(w, r)
	}
}

func (f *fakeMeili) unexpected(w http.ResponseWriter, r *http.Request) {
	f.t.Errorf("meilisearch fake: unexpected request %s %s", r.Method, r.URL)
	f.apiError(w, http.StatusNotFound, "not_found", "unexpected request")
}

func (f *fakeMeili) json(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func (f *fakeMeili) apiError(w http.ResponseWriter, status int, code, msg string) {
	f.json(w, status, map[string]any{"message": msg, "code": code, "type": "invalid_request", "link": "https://docs.meilisearch.com/errors#" + code})
}

// decode reads the body into v, failing the test on unknown fields.
func (f *fakeMeili) decode(r *http.Request, v any) bool {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		f.t.Errorf("meilisearch fake: %s %s: body: %v", r.Method, r.URL.Path, err)
		return false
	}
	return true
}

// enqueue records a task and answers 202 with its summary, as every write
// endpoint does.
func (f *fakeMeili) enqueue(w http.ResponseWriter, indexUID, typ string, apply func() (string, string)) {
	f.nextTask++
	info := map[string]any{
		"taskUid": f.nextTask, "indexUid": indexUID, "status": "enqueued", "type": typ,
		"enqueuedAt": time.Now().UTC().Format(time.RFC3339Nano),
	}
	f.tasks[f.nextTask] = &fakeTask{info: info, apply: apply}
	f.json(w, http.StatusAccepted, info)
}

func (f *fakeMeili) getTask(w http.ResponseWriter, uid int64) {
	task := f.tasks[uid]
	if task == nil {
		f.t.Errorf("meilisearch fake: poll of unknown task %d", uid)
		f.apiError(w, http.StatusNotFound, "task_not_found", "Task not found.")
		return
	}
	task.polled++
	out := map[string]any{"uid": uid, "indexUid": task.info["indexUid"], "type": task.info["type"],
		"enqueuedAt": task.info["enqueuedAt"]}
	switch task.polled {
	case 1: // Meilisearch processes tasks in the background
		if code, msg := task.apply(); code != "" {
			task.info["status"] = "failed"
			task.info["error"] = map[string]any{"code": code, "message": msg, "type": "internal", "link": ""}
		} else {
			task.info["status"] = "succeeded"
		}
		out["status"] = "processing"
	default:
		out["status"] = task.info["status"]
		if e, ok := task.info["error"]; ok {
			out["error"] = e
		}
	}
	f.json(w, http.StatusOK, out)
}

func (f *fakeMeili) createIndex(w http.ResponseWriter, r *http.Request) {
	var body struct {
		UID        string `json:"uid"`
		PrimaryKey string `json:"primaryKey"`
	}
	if !f.decode(r, &body) {
		f.apiError(w, http.StatusBadRequest, "bad_request", "bad body")
		return
	}
	f.enqueue(w, body.UID, "indexCreation", func() (string, string) {
		if _, ok := f.indexes[body.UID]; ok {
			return "index_already_exists", fmt.Sprintf("Index `%s` already exists.", body.UID)
		}
		f.indexes[body.UID] = &fakeIndex{primaryKey: body.PrimaryKey, docs: map[int64]map[string]any{}}
		return "", ""
	})
}

// index returns uid's index, creating it as Meilisearch does for settings
// and documents sent to a missing index.
func (f *fakeMeili) index(uid, primaryKey string) *fakeIndex {
	x := f.indexes[uid]
	if x == nil {
		x = &fakeIndex{primaryKey: primaryKey, docs: map[int64]map[string]any{}}
		f.indexes[uid] = x
	}
	return x
}

func (f *fakeMeili) updateSettings(w http.ResponseWriter, r *http.Request, uid string) {
	var body struct {
		SearchableAttributes []string `json:"searchableAttributes"`
		FilterableAttributes []string `json:"filterableAttributes"`
	}
	if !f.decode(r, &body) {
		f.apiError(w, http.StatusBadRequest, "bad_request", "bad body")
		return
	}
	if len(body.SearchableAttributes) == 0 {
		f.t.Errorf("meilisearch fake: settings of %s without searchableAttributes", uid)
	}
	f.enqueue(w, uid, "settingsUpdate", func() (string, string) {
		x := f.index(uid, "")
		x.searchable, x.filterable = body.SearchableAttributes, body.FilterableAttributes
		return "", ""
	})
}

func (f *fakeMeili) takeFailure() bool {
	if f.failNext > 0 {
		f.failNext--
		return true
	}
	return false
}

func (f *fakeMeili) addDocuments(w http.ResponseWriter, r *http.Request, uid string) {
	pk := r.URL.Query().Get("primaryKey")
	if pk != "id" {
		f.t.Errorf("meilisearch fake: add documents to %s with primaryKey %q, want id", uid, pk)
	}
	var docs []map[string]any
	if err := json.NewDecoder(r.Body).Decode(&docs); err != nil || len(docs) == 0 {
		f.t.Errorf("meilisearch fake: add documents to %s: want a JSON array of documents: %v", uid, err)
		f.apiError(w, http.StatusBadRequest, "malformed_payload", "bad body")
		return
	}
	fields := map[string][]string{
		"documents": {"document_type", "filename", "id", "text"},
		"contacts":  {"email", "id", "message", "name"},
	}[uid]
	for _, d := range docs {
		keys := slices.Sorted(func(yield func(string) bool) {
			for k := range d {
				if !yield(k) {
					return
				}
			}
		})
		if !slices.Equal(keys, fields) {
			f.t.Errorf("meilisearch fake: document for %s has fields %v, want %v", uid, keys, fields)
		}
		if _, ok := d["id"].(float64); !ok {
			f.t.Errorf("meilisearch fake: document id %v is not a number", d["id"])
		}
	}
	fail := f.takeFailure()
	f.enqueue(w, uid, "documentAdditionOrUpdate", func() (string, string) {
		if fail {
			return "internal", "simulated indexing failure"
		}
		x := f.index(uid, pk)
		for _, d := range docs {
			id := int64(d["id"].(float64))
			if _, ok := x.docs[id]; !ok {
				x.order = append(x.order, id)
			}
			x.docs[id] = d
		}
		return "", ""
	})
}

func (f *fakeMeili) deleteDocument(w http.ResponseWriter, uid string, id int64) {
	fail := f.takeFailure()
	f.enqueue(w, uid, "documentDeletion", func() (string, string) {
		if fail {
			return "internal", "simulated deletion failure"
		}
		x := f.indexes[uid]
		if x == nil {
			return "index_not_found", "Index not found."
		}
		if _, ok := x.docs[id]; ok {
			delete(x.docs, id)
			x.order = slices.DeleteFunc(x.order, func(v int64) bool { return v == id })
		}
		return "", ""
	})
}

type searchBody struct {
	Q                     *string         `json:"q"`
	Limit                 int             `json:"limit"`
	Offset                int             `json:"offset"`
	Filter                any             `json:"filter"`
	MatchingStrategy      string          `json:"matchingStrategy"`
	ShowRankingScore      bool            `json:"showRankingScore"`
	AttributesToRetrieve  []string        `json:"attributesToRetrieve"`
	AttributesToHighlight []string        `json:"attributesToHighlight"`
	AttributesToCrop      []string        `json:"attributesToCrop"`
	CropLength            int             `json:"cropLength"`
	HighlightPreTag       string          `json:"highlightPreTag"`
	HighlightPostTag      string          `json:"highlightPostTag"`
	Hybrid                json.RawMessage `json:"hybrid"` // the SDK always sends it, as null
}

var filterExpr = regexp.MustCompile(`^([a-z_]+) = "((?:[^"\\]|\\.)*)"$`)

func (f *fakeMeili) search(w http.ResponseWriter, r *http.Request, uid string) {
	var body searchBody
	if !f.decode(r, &body) {
		f.apiError(w, http.StatusBadRequest, "bad_request", "bad body")
		return
	}
	x := f.indexes[uid]
	if x == nil {
		f.apiError(w, http.StatusNotFound, "index_not_found", "Index `"+uid+"` not found.")
		return
	}
	switch {
	case body.Q == nil:
		f.t.Errorf("meilisearch fake: search without q")
	case body.MatchingStrategy != "all":
		f.t.Errorf("meilisearch fake: matchingStrategy %q, want all (every word must match)", body.MatchingStrategy)
	case !body.ShowRankingScore:
		f.t.Errorf("meilisearch fake: search without showRankingScore")
	case body.Limit < 1 || body.Limit > 100 || body.Offset < 0:
		f.t.Errorf("meilisearch fake: limit %d offset %d", body.Limit, body.Offset)
	case len(body.Hybrid) > 0 && string(body.Hybrid) != "null":
		f.t.Errorf("meilisearch fake: hybrid %s", body.Hybrid)
	}
	filterAttr, filterValue := "", ""
	if body.Filter != nil {
		s, _ := body.Filter.(string)
		m := filterExpr.FindStringSubmatch(s)
		if m == nil || !slices.Contains(x.filterable, m[1]) {
			f.apiError(w, http.StatusBadRequest, "invalid_search_filter", fmt.Sprintf("invalid filter %q", body.Filter))
			f.t.Errorf("meilisearch fake: invalid filter %#v", body.Filter)
			return
		}
		filterAttr = m[1]
		filterValue = regexp.MustCompile(`\\(.)`).ReplaceAllString(m[2], "$1")
	}

	words := tokens(*body.Q)
	if len(words) > 10 { // Meilisearch reads the first ten words
		words = words[:10]
	}
	type hit struct {
		id    int64
		score float64
	}
	var hits []hit
	for _, id := range x.order {
		d := x.docs[id]
		if filterAttr != "" && d[filterAttr] != filterValue {
			continue
		}
		if score, ok := x.match(d, words); ok {
			hits = append(hits, hit{id, score})
		}
	}
	slices.SortStableFunc(hits, func(a, b hit) int {
		switch {
		case a.score > b.score:
			return -1
		case a.score < b.score:
			return 1
		}
		return 0
	})
	total := len(hits)
	hits = hits[min(body.Offset, total):min(body.Offset+body.Limit, total)]
	out := []map[string]any{}
	for _, h := range hits {
		d := x.docs[h.id]
		o := map[string]any{}
		formatted := map[string]any{}
		for _, a := range body.AttributesToRetrieve {
			o[a] = d[a]
			formatted[a] = d[a]
		}
		for _, a := range body.AttributesToHighlight {
			s, _ := d[a].(string)
			if slices.Contains(body.AttributesToCrop, a) {
				s = crop(s, words, body.CropLength)
			}
			formatted[a] = highlight(s, words, body.HighlightPreTag, body.HighlightPostTag)
		}
		o["_formatted"] = formatted
		o["_rankingScore"] = h.score
		out = append(out, o)
	}
	f.json(w, http.StatusOK, map[string]any{
		"hits": out, "query": *body.Q, "processingTimeMs": 0,
		"limit": body.Limit, "offset": body.Offset, "estimatedTotalHits": total,
	})
}

// match reports whether every word matches a searchable attribute of d
// and scores the match: each word counts for the earliest attribute it
// is in, an earlier attribute counting more.
func (x *fakeIndex) match(d map[string]any, words []string) (float64, bool) {
	if len(words) == 0 {
		return 1, true // placeholder search
	}
	var sum float64
	for i, w := range words {
		best := -1.0
		for rank, a := range x.searchable {
			s, _ := d[a].(string)
			if slices.ContainsFunc(tokens(s), func(tok string) bool { return wordMatches(tok, w, i == len(words)-1) }) {
				best = 1 - 0.2*float64(rank)
				break
			}
		}
		if best < 0 {
			return 0, false
		}
		sum += best
	}
	return sum / float64(len(words)), true
}

func wordMatches(tok, word string, prefix bool) bool {
	return tok == word || prefix && strings.HasPrefix(tok, word)
}

var wordRE = regexp.MustCompile(`[\p{L}\p{N}]+`)

func tokens(s string) []string {
	words := wordRE.FindAllString(s, -1)
	for i, w := range words {
		words[i] = strings.ToLower(w)
	}
	return words
}

// crop keeps n words of s around its first match, marking cuts with "…".
func crop(s string, words []string, n int) string {
	locs := wordRE.FindAllStringIndex(s, -1)
	if n <= 0 || len(locs) <= n {
		return s
	}
	first := 0
	for i, l := range locs {
		if slices.ContainsFunc(words, func(w string) bool { return wordMatches(strings.ToLower(s[l[0]:l[1]]), w, true) }) {
			first = i
			break
		}
	}
	start := max(0, min(first-n/2, len(locs)-n))
	end := start + n - 1
	out := s[locs[start][0]:locs[end][1]]
	if start > 0 {
		out = "…" + out
	}
	if end < len(locs)-1 {
		out += "…"
	}
	return out
}

// highlight wraps the matched part of each matching word in the tags.
func highlight(s string, words []string, pre, post string) string {
	var b strings.Builder
	last := 0
	for _, l := range wordRE.FindAllStringIndex(s, -1) {
		tok := strings.ToLower(s[l[0]:l[1]])
		for i, w := range words {
			if wordMatches(tok, w, i == len(words)-1) {
				n := len(w)                // a prefix match highlights the prefix, as Meilisearch does
				if len(tok) != l[1]-l[0] { // lowercasing changed its length
					n = l[1] - l[0]
				}
				b.WriteString(s[last:l[0]])
				b.WriteString(pre + s[l[0]:l[0]+n] + post)
				last = l[0] + n
				break
			}
		}
	}
	b.WriteString(s[last:])
	return b.String()
}
