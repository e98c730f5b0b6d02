// Package meili implements app.SearchIndex on Meilisearch with
// meilisearch-go: typo-tolerant, ranked search for deployments that have
// outgrown PostgreSQL's full-text search.
package meili

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/meilisearch/meilisearch-go"

	"selfhost.dev/edgeapp/app"
)

// backend names this adapter in app.Unavailable errors and /health/ready.
const backend = "search"

// The index names and their primary key.
const (
	DocumentsIndex = "documents"
	ContactsIndex  = "contacts"
	primaryKey     = "id"
)

// settings are each index's searchable attributes, in ranking order (a
// match in an earlier attribute ranks higher), and filterable attributes.
var settings = map[string]*meilisearch.Settings{
	DocumentsIndex: {
		SearchableAttributes: []string{"filename", "text"},
		FilterableAttributes: []string{"document_type"},
	},
	ContactsIndex: {
		SearchableAttributes: []string{"name", "email", "message"},
		FilterableAttributes: []string{},
	},
}

// maxTextBytes caps the text sent per document; Meilisearch indexes only
// the first 65,535 words of an attribute anyway.
const maxTextBytes = 512 << 10

// Index is the documents and contacts indexes of one Meilisearch server.
type Index struct {
	// TaskTimeout bounds the wait for a write's task to finish. If zero,
	// 30 seconds is used.
	TaskTimeout time.Duration
	// PollInterval is how often a task's status is asked for. If zero,
	// 50 milliseconds is used.
	PollInterval time.Duration

	client meilisearch.ServiceManager

	mu    sync.Mutex
	ready bool // the indexes exist with their settings
}

var _ app.SearchIndex = (*Index)(nil)

// New returns the index on the server at rawURL, authenticating with
// masterKey (sent as a Bearer token; empty for a server without one). It
// does not contact the server: the indexes and their settings are created
// by the first call that reaches it, so the app starts while Meilisearch
// is down and search catches up through the outbox.
func New(rawURL, masterKey string) (*Index, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("meili: invalid MEILI_URL %q (want http://host:port)", rawURL)
	}
	opts := []meilisearch.Option{meilisearch.WithCustomRetries([]int{502, 503, 504}, 1)}
	if masterKey != "" {
		opts = append(opts, meilisearch.WithAPIKey(masterKey))
	}
	return &Index{client: meilisearch.New(strings.TrimRight(rawURL, "/"), opts...)}, nil
}

// ensureIndexes creates both indexes and applies their settings, once.
// Both steps are idempotent, so instances starting together do no harm.
func (x *Index) ensureIndexes(ctx context.Context) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.ready {
		return nil
	}
	for _, uid := range []string{DocumentsIndex, ContactsIndex} {
		info, err := x.client.CreateIndexWithContext(ctx, &meilisearch.IndexConfig{Uid: uid, PrimaryKey: primaryKey})
		if err != nil {
			return meiliError("create index "+uid, err)
		}
		err = x.wait(ctx, "create index "+uid, info)
		if err != nil && !strings.Contains(err.Error(), "index_already_exists") {
			return err
		}
		info, err = x.client.Index(uid).UpdateSettingsWithContext(ctx, settings[uid])
		if err != nil {
			return meiliError("update settings of "+uid, err)
		}
		if err := x.wait(ctx, "update settings of "+uid, info); err != nil {
			return err
		}
	}
	x.ready = true
	return nil
}

// wait waits for the task to finish and turns a task that Meilisearch
// reports failed (or canceled) into an error, so that the outbox job that
// asked for it is retried rather than marked done.
func (x *Index) wait(ctx context.Context, op string, info *meilisearch.TaskInfo) error {
	timeout := x.TaskTimeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	interval := x.PollInterval
	if interval == 0 {
		interval = 50 * time.Millisecond
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	task, err := x.client.WaitForTaskWithContext(ctx, info.TaskUID, interval)
	if err != nil {
		return meiliError(op+": wait for task "+strconv.FormatInt(info.TaskUID, 10), err)
	}
	if task.Status != meilisearch.TaskStatusSucceeded {
		return fmt.Errorf("%s: task %d %s: %s: %s", op, info.TaskUID, task.Status, task.Error.Code, task.Error.Message)
	}
	return nil
}

type documentEntry struct {
	ID           int64  `json:"id"`
	Filename     string `json:"filename"`
	DocumentType string `json:"document_type"`
	Text         string `json:"text"`
}

type contactEntry struct {
	ID      int64  `json:"id"`
	Name    string `json:"name"`
	Email   string `json:"email"`
	Message string `json:"message"`
}

// IndexDocument adds or replaces the document's entry and waits until
// Meilisearch has applied it.
func (x *Index) IndexDocument(ctx context.Context, d *app.Document, text string) error {
	return x.add(ctx, DocumentsIndex, fmt.Sprintf("index document %d", d.ID), []documentEntry{{
		ID: d.ID, Filename: d.Filename, DocumentType: d.DocumentType, Text: truncateUTF8(text, maxTextBytes),
	}})
}

// IndexContact adds or replaces the contact's entry and waits until
// Meilisearch has applied it.
func (x *Index) IndexContact(ctx context.Context, c *app.Contact) error {
	return x.add(ctx, ContactsIndex, fmt.Sprintf("index contact %d", c.ID), []contactEntry{{
		ID: c.ID, Name: c.Name, Email: c.Email, Message: c.Message,
	}})
}

func (x *Index) add(ctx context.Context, uid, op string, entries any) error {
	if err := x.ensureIndexes(ctx); err != nil {
		return err
	}
	pk := primaryKey
	info, err := x.client.Index(uid).AddDocumentsWithContext(ctx, entries, &meilisearch.DocumentOptions{PrimaryKey: &pk})
	if err != nil {
		return meiliError(op, err)
	}
	return x.wait(ctx, op, info)
}

// RemoveDocument deletes the document's entry; Meilisearch treats a
// missing one as done.
func (x *Index) RemoveDocument(ctx context.Context, id int64) error {
	if err := x.ensureIndexes(ctx); err != nil {
		return err
	}
	op := fmt.Sprintf("remove document %d", id)
	info, err := x.client.Index(DocumentsIndex).DeleteDocumentWithContext(ctx, strconv.FormatInt(id, 10), nil)
	if err != nil {
		return meiliError(op, err)
	}
	return x.wait(ctx, op, info)
}

// SearchDocuments searches filenames and text. Every word must match
// (matchingStrategy "all"; Meilisearch's default drops words until
// something matches); the last word matches as a prefix, and typos are
// tolerated.
func (x *Index) SearchDocuments(ctx context.Context, q app.SearchQuery) (*app.SearchResult, error) {
	req := searchRequest(q, []string{"filename", "text"}, "text")
	if q.DocumentType != "" {
		req.Filter = "document_type = " + filterString(q.DocumentType)
	}
	return x.search(ctx, DocumentsIndex, q, req, "text", "filename")
}

// SearchContacts searches names, emails and messages.
func (x *Index) SearchContacts(ctx context.Context, q app.SearchQuery) (*app.SearchResult, error) {
	req := searchRequest(q, []string{"name", "email", "message"}, "message")
	return x.search(ctx, ContactsIndex, q, req, "message", "name", "email")
}

func searchRequest(q app.SearchQuery, highlight []string, crop string) *meilisearch.SearchRequest {
	limit := q.Limit
	if limit <= 0 {
		limit = 10
	}
	return &meilisearch.SearchRequest{
		Limit:                 int64(limit),
		Offset:                int64(max(q.Offset, 0)),
		MatchingStrategy:      meilisearch.All,
		ShowRankingScore:      true,
		AttributesToRetrieve:  []string{primaryKey},
		AttributesToHighlight: highlight,
		AttributesToCrop:      []string{crop},
		CropLength:            30,
		HighlightPreTag:       "<mark>",
		HighlightPostTag:      "</mark>",
	}
}

// search runs req and takes each hit's snippet from the first of fields
// whose formatted value has a highlighted match (else the first field).
func (x *Index) search(ctx context.Context, uid string, q app.SearchQuery, req *meilisearch.SearchRequest, fields ...string) (*app.SearchResult, error) {
	if err := x.ensureIndexes(ctx); err != nil {
		return nil, err
	}
	resp, err := x.client.Index(uid).SearchWithContext(ctx, queryWords(q.Q), req)
	if err != nil {
		return nil, meiliError("search "+uid, err)
	}
	res := &app.SearchResult{Hits: make([]app.SearchHit, 0, len(resp.Hits)), Total: int(resp.EstimatedTotalHits)}
	if resp.TotalHits > 0 {
		res.Total = int(resp.TotalHits)
	}
	for _, h := range resp.Hits {
		var hit struct {
			ID        int64          `json:"id"`
			Score     float64        `json:"_rankingScore"`
			Formatted map[string]any `json:"_formatted"` // the id stays a number
		}
		if err := h.DecodeInto(&hit); err != nil {
			return nil, fmt.Errorf("search %s: decode hit: %w", uid, err)
		}
		res.Hits = append(res.Hits, app.SearchHit{ID: hit.ID, Score: hit.Score, Snippet: snippet(hit.Formatted, fields)})
	}
	return res, nil
}

func snippet(formatted map[string]any, fields []string) string {
	for _, f := range fields {
		if s, _ := formatted[f].(string); strings.Contains(s, "<mark>") {
			return s
		}
	}
	for _, f := range fields {
		if s, _ := formatted[f].(string); s != "" {
			return s
		}
	}
	return ""
}

// queryWords strips what Meilisearch would read as syntax, so that a query
// is just words: double quotes (phrase search) and a leading minus
// (negation).
func queryWords(q string) string {
	words := strings.Fields(strings.ReplaceAll(q, `"`, " "))
	for i, w := range words {
		words[i] = strings.TrimLeft(w, "-")
	}
	return strings.Join(words, " ")
}

// filterString quotes s as a string in Meilisearch's filter syntax.
func filterString(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// Ping reports whether the server is available, creating the indexes if
// they are not there yet.
func (x *Index) Ping(ctx context.Context) error {
	h, err := x.client.HealthWithContext(ctx)
	if err != nil {
		return meiliError("health", err)
	}
	if h.Status != "available" {
		return app.Unavailable(backend, fmt.Errorf("health: status %q", h.Status))
	}
	return x.ensureIndexes(ctx)
}

// meiliError wraps err, the failure of op. A server that cannot be reached
// or answers 5xx is EUNAVAILABLE. meilisearch.Error's own message carries
// the whole request body (a document's text), so only its gist is kept.
func meiliError(op string, err error) error {
	var me *meilisearch.Error
	if !errors.As(err, &me) {
		return fmt.Errorf("%s: %w", op, err)
	}
	var cause error
	switch {
	case me.OriginError != nil:
		cause = fmt.Errorf("%s %s: %w", me.Method, me.Endpoint, me.OriginError)
	case me.MeilisearchApiError.Code != "":
		cause = fmt.Errorf("%s %s: status %d: %s: %s", me.Method, me.Endpoint, me.StatusCode,
			me.MeilisearchApiError.Code, me.MeilisearchApiError.Message)
	default:
		cause = fmt.Errorf("%s %s: status %d", me.Method, me.Endpoint, me.StatusCode)
	}
	var opErr *net.OpError
	if me.StatusCode >= 500 || me.ErrCode == meilisearch.MeilisearchCommunicationError ||
		me.ErrCode == meilisearch.MeilisearchMaxRetriesExceeded || errors.As(me.OriginError, &opErr) {
		return app.Unavailable(backend, fmt.Errorf("%s: %w", op, cause))
	}
	return fmt.Errorf("%s: %w", op, cause)
}

// truncateUTF8 cuts s to at most n bytes without splitting a character.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
