package sqlite

import (
	"strings"
	"unicode"
)

// maxQueryTerms bounds the words of one query, so that a pasted page of
// text cannot make a search expensive.
const maxQueryTerms = 16

// matchQuery turns a user's query into an FTS5 MATCH expression in which
// every word must match as a prefix: `hosting back` becomes
// `"hosting"* "back"*`. Words are split the way the unicode61 tokenizer
// splits text (letters, digits and marks; everything else separates), and
// each is quoted, so quotes, operators (AND, OR, NOT, NEAR), column filters
// (:), '-', '*', '^' and parentheses in q are never FTS syntax. It returns
// "" if q has no words.
func matchQuery(q string) string {
	words := strings.FieldsFunc(q, func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r) && !unicode.IsMark(r)
	})
	var b strings.Builder
	seen := make(map[string]bool, len(words))
	n := 0
	for _, w := range words {
		w = strings.ToLower(w)
		if seen[w] || n == maxQueryTerms {
			continue
		}
		seen[w] = true
		n++
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteByte('"')
		b.WriteString(w) // has no '"': only letters, digits and marks
		b.WriteString(`"*`)
	}
	return b.String()
}
