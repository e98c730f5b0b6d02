package sqlite

import (
	"strings"
	"unicode"
)

// maxQueryTerms bounds the words of one query, so that a pasted page of
// text cannot make a search expensive.
const maxQueryTerms = 16

// queryWords splits a user's query into lower-case words the way the
// unicode61 tokenizer splits text (letters, digits and marks; everything
// else separates), without repeats, at most maxQueryTerms of them.
func queryWords(q string) []string {
	fields := strings.FieldsFunc(q, func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r) && !unicode.IsMark(r)
	})
	words := make([]string, 0, min(len(fields), maxQueryTerms))
	seen := make(map[string]bool, len(fields))
	for _, w := range fields {
		w = strings.ToLower(w)
		if seen[w] || len(words) == maxQueryTerms {
			continue
		}
		seen[w] = true
		words = append(words, w)
	}
	return words
}

// matchQuery turns a user's query into an FTS5 MATCH expression in which
// every word must match as a prefix: `hosting back` becomes
// `"hosting"* AND "back"*`. Each word is quoted, so quotes, operators (AND, OR,
// NOT, NEAR), column filters (:), '-', '*', '^' and parentheses in q are
// never FTS syntax. It returns "" if q has no words.
func matchQuery(q string) string {
	words := queryWords(q)
	for i, w := range words {
		words[i] = quote(w) + "*"
	}
	return strings.Join(words, " AND ")
}

// quote makes a word an FTS5 string. Words from queryWords have no '"';
// vocabulary terms might, so it is doubled as FTS5 requires.
func quote(w string) string {
	return `"` + strings.ReplaceAll(w, `"`, `""`) + `"`
}
