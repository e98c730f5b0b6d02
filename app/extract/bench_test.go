package extract_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"selfhost.dev/edgeapp/app/extract"
)

// BenchmarkPDF extracts each corpus PDF; b.SetBytes makes -bench report
// the file bytes read per second.
func BenchmarkPDF(b *testing.B) {
	for _, f := range corpus(b) {
		data, err := os.ReadFile(f)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(strings.TrimSuffix(filepath.Base(f), ".pdf"), func(b *testing.B) {
			e := extract.New()
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := e.ExtractText(b.Context(), bytes.NewReader(data), int64(len(data)), "application/pdf"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
