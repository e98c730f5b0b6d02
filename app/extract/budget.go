package extract

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"runtime/metrics"
	"time"
)

// Defaults of the Extractor's bounds on one PDF. They are far above what a
// real document needs (the 36-page manual in testdata reads 0.3 MiB and
// decodes 0.6 MiB of page content in well under a second) and low enough that
// a hostile file costs at most a few seconds of one core and a few MiB.
const (
	DefaultMaxPages       = 5000
	DefaultMaxReadBytes   = 512 << 20 // bytes read from the file, re-reads included
	DefaultMaxStreamBytes = 256 << 20 // decompressed bytes of content streams and fonts' maps
	DefaultTimeout        = 30 * time.Second
	DefaultMaxMemory      = 512 << 20 // heap growth while reading one PDF
	// maxOps bounds the content-stream operators interpreted per document:
	// forms drawn inside forms can multiply a small file's work.
	maxOps = 20_000_000
	// maxForms bounds the forms drawn per document; past it forms are
	// skipped. Real documents draw a few per page (logos, headers).
	maxForms = 5000
	// maxGlyphs bounds the glyphs kept per page before layout.
	maxGlyphs = 200_000
	// maxCMapBytes bounds a font's ToUnicode map, which the PDF library
	// parses whole into memory; real ones are a few KiB.
	maxCMapBytes = 4 << 20
)

// budgetError is what the budget panics with when a bound is crossed; pdfText
// recovers it and reports why the PDF was not read.
type budgetError struct{ what string }

func (e budgetError) Error() string { return e.what }

// budget bounds the work spent on one PDF. The PDF library has no context
// and loops inside its parser; every byte it reads goes through a
// budgetReaderAt, so checking there stops it too (by a panic that pdfText
// recovers).
type budget struct {
	ctx         context.Context
	deadline    time.Time
	readLeft    int64
	streamLeft  int64
	streamMax   int64
	opsLeft     int
	formsLeft   int
	timeChecked int
	// memLimit is the heap size at which reading stops: the heap at the
	// start plus the allowed growth. The library parses object streams and
	// fonts' maps whole, and a compressed stream can expand a
	// thousandfold; watching the heap is the one bound that covers it.
	memLimit uint64
	mem      []metrics.Sample
	lastGC   time.Time
}

func newBudget(ctx context.Context, timeout time.Duration, maxRead, maxStream, maxMem int64) *budget {
	b := &budget{ctx: ctx, deadline: time.Now().Add(timeout), readLeft: maxRead, streamLeft: maxStream, streamMax: maxStream,
		opsLeft: maxOps, formsLeft: maxForms, mem: []metrics.Sample{{Name: heapMetric}}}
	b.memLimit = b.heap() + uint64(maxMem)
	return b
}

// heapMetric is the heap's live and not yet swept objects; reading it does
// not stop the world, unlike runtime.ReadMemStats.
const heapMetric = "/memory/classes/heap/objects:bytes"

func (b *budget) heap() uint64 {
	metrics.Read(b.mem)
	if b.mem[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return b.mem[0].Value.Uint64()
}

// check panics if the context is done or the time is up.
func (b *budget) check() {
	if err := b.ctx.Err(); err != nil {
		panic(ctxError{err})
	}
	if time.Now().After(b.deadline) {
		panic(budgetError{"the PDF took too long to read"})
	}
	// What looks like growth may be garbage: collect before deciding, but
	// not at every check, or a heap that other work keeps large would
	// have this collect without end.
	if b.heap() > b.memLimit && time.Since(b.lastGC) > 100*time.Millisecond {
		runtime.GC()
		b.lastGC = time.Now()
		if b.heap() > b.memLimit {
			panic(budgetError{"the PDF needs too much memory to read"})
		}
	}
}

// op counts one interpreted operator and checks the time every 4096.
func (b *budget) op() {
	b.opsLeft--
	if b.opsLeft < 0 {
		panic(budgetError{"the PDF draws too many operations"})
	}
	b.timeChecked++
	if b.timeChecked&4095 == 0 {
		b.check()
	}
}

// ctxError carries the context's error out of the library through a panic,
// so that a cancelled extraction is reported as cancelled (and retried), not
// as a bad PDF.
type ctxError struct{ err error }

func (e ctxError) Error() string { return e.err.Error() }
func (e ctxError) Unwrap() error { return e.err }

// budgetReaderAt counts and time-checks every read of the PDF file.
type budgetReaderAt struct {
	r io.ReaderAt
	b *budget
}

func (r *budgetReaderAt) ReadAt(p []byte, off int64) (int, error) {
	r.b.check()
	n, err := r.r.ReadAt(p, off)
	r.b.readLeft -= int64(n)
	if r.b.readLeft < 0 {
		panic(budgetError{"the PDF's structure makes it read too much"})
	}
	return n, err
}

// streamReader counts decompressed bytes against the document's stream
// budget, so that a decompression bomb ends when the budget does.
type streamReader struct {
	r io.Reader
	b *budget
}

func (s *streamReader) Read(p []byte) (int, error) {
	s.b.check()
	n, err := s.r.Read(p)
	s.b.streamLeft -= int64(n)
	if s.b.streamLeft < 0 {
		panic(budgetError{fmt.Sprintf("the PDF's content decompresses to more than the %d MiB allowed", s.b.streamMax>>20)})
	}
	return n, err
}
