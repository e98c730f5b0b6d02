package extract_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"unicode"

	"golang.org/x/text/unicode/norm"

	"selfhost.dev/edgeapp/app/extract"
	"selfhost.dev/edgeapp/internal/testserver"
)

// minRecall is the share of pdftotext's words extraction must find in
// every PDF of the corpus (issue 13); minInOrder the share of pdftotext's
// runs of four consecutive words it must find in the same order (reading
// order, two columns included).
const (
	minRecall  = 0.95
	minInOrder = 0.90
)

// corpus lists testdata/pdf's PDFs; each has its golden text beside it.
func corpus(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob("testdata/pdf/*.pdf")
	if err != nil || len(files) == 0 {
		t.Fatalf("no PDFs in testdata/pdf: %v", err)
	}
	return files
}

func golden(f string) string { return strings.TrimSuffix(f, ".pdf") + ".pdftotext.txt" }

// words splits text into the words recall counts: NFKC normalized (so the
// ligature ﬁ is f i), maximal runs of letters and digits.
func words(text string) []string {
	return strings.FieldsFunc(norm.NFKC.String(text), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
}

// recall is the share of want's words, counted as a multiset, that got
// has; missed lists those it lacks.
func recall(got, want []string) (float64, []string) {
	have := map[string]int{}
	for _, w := range got {
		have[w]++
	}
	found := 0
	var missed []string
	for _, w := range want {
		if have[w] > 0 {
			have[w]--
			found++
		} else {
			missed = append(missed, w)
		}
	}
	if len(want) == 0 {
		return 1, nil
	}
	return float64(found) / float64(len(want)), missed
}

// runs returns the runs of n consecutive words.
func runs(ws []string, n int) []string {
	var out []string
	for i := 0; i+n <= len(ws); i++ {
		out = append(out, strings.Join(ws[i:i+n], " "))
	}
	return out
}

// TestRecall measures, per producer, the share of pdftotext's words (its
// committed golden text) that extraction finds, and the share of
// extraction's words that pdftotext has (precision: words run together or
// split apart lower both).
func TestRecall(t *testing.T) {
	var table strings.Builder
	fmt.Fprintf(&table, "\n| file | words | recall | precision | 4-word runs in order |\n|---|---|---|---|---|\n")
	for _, f := range corpus(t) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(golden(f))
		if err != nil {
			t.Fatalf("golden text: %v (testdata/pdf/make.sh writes it)", err)
		}
		got, err := extract.New().ExtractText(t.Context(), bytes.NewReader(b), int64(len(b)), "application/pdf")
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		gw, ww := words(got), words(string(want))
		r, missed := recall(gw, ww)
		p, _ := recall(ww, gw)
		o, _ := recall(runs(gw, 4), runs(ww, 4))
		fmt.Fprintf(&table, "| %s | %d | %.2f%% | %.2f%% | %.2f%% |\n", filepath.Base(f), len(ww), 100*r, 100*p, 100*o)
		if r < minRecall {
			t.Errorf("%s: recall %.4f < %.2f; first missed: %q", f, r, minRecall, missed[:min(len(missed), 20)])
		}
		if o < minInOrder {
			t.Errorf("%s: %.4f of 4-word runs in order < %.2f", f, o, minInOrder)
		}
	}
	t.Log(table.String())
}

// TestGoldenTexts checks that the committed golden texts are what the
// installed pdftotext says, so that TestRecall measures against the real
// tool and not a stale copy.
func TestGoldenTexts(t *testing.T) {
	if _, err := exec.LookPath("pdftotext"); err != nil {
		testserver.Skip(t, "pdftotext not found: apt-get install poppler-utils")
	}
	for _, f := range corpus(t) {
		out, err := exec.CommandContext(t.Context(), "pdftotext", "-enc", "UTF-8", f, "-").Output()
		if err != nil {
			t.Fatalf("pdftotext %s: %v", f, err)
		}
		want, err := os.ReadFile(golden(f))
		if err != nil {
			t.Fatal(err)
		}
		// Another poppler version may lay a line out differently; the
		// words are what recall counts, and they must agree.
		r, missed := recall(words(string(out)), words(string(want)))
		if r < 0.995 {
			t.Errorf("%s: the golden text differs from pdftotext's (%.4f of its words agree; first differing: %q); run testdata/pdf/make.sh", f, r, missed[:min(len(missed), 10)])
		}
	}
}

func readCorpus(name string) ([]byte, error) { return os.ReadFile(filepath.Join("testdata/pdf", name)) }
