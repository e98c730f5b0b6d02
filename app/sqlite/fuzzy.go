package sqlite

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Typo tolerance follows Meilisearch's defaults: words of five characters
// or more may have one typo, of nine or more two. The first two characters
// must be right: candidates are read from the vocabulary by that prefix,
// which keeps the lookup to a small range of terms.
const (
	oneTypoLen      = 5
	twoTyposLen     = 9
	maxAlternatives = 8 // per word, most frequent first
)

// fuzzyQuery is the fallback for a query that matched nothing: each word
// with no indexed term starting with it is replaced by the terms within its
// typo allowance, as an OR group. It returns "" if no word has an
// alternative, so the caller can skip a second, pointless search.
func (x *Index) fuzzyQuery(ctx context.Context, vocab, q string) (string, error) {
	words := queryWords(q)
	parts := make([]string, 0, len(words))
	changed := false
	for _, w := range words {
		folded := fold(w)
		typos := allowedTypos(folded)
		alts := []string(nil)
		if typos > 0 {
			var err error
			if alts, err = x.alternatives(ctx, vocab, folded, typos); err != nil {
				return "", err
			}
		}
		if len(alts) == 0 {
			parts = append(parts, quote(w)+"*")
			continue
		}
		changed = true
		for i, a := range alts {
			alts[i] = quote(a)
		}
		parts = append(parts, "("+strings.Join(alts, " OR ")+")")
	}
	if !changed {
		return "", nil
	}
	return strings.Join(parts, " AND "), nil
}

// alternatives returns the vocabulary terms within typos edits of word, or
// nil if some term starts with word (then the word is not a typo).
func (x *Index) alternatives(ctx context.Context, vocab, word string, typos int) ([]string, error) {
	first, _ := utf8.DecodeRuneInString(word)
	second, _ := utf8.DecodeRuneInString(word[utf8.RuneLen(first):])
	lo := string([]rune{first, second})
	hi := string([]rune{first, second + 1})
	rows, err := x.db.read.QueryContext(ctx,
		`SELECT term, doc FROM `+vocab+` WHERE term >= ? AND term < ?`, lo, hi)
	if err != nil {
		return nil, fmt.Errorf("read vocabulary: %w", err)
	}
	defer rows.Close()
	type candidate struct {
		term      string
		dist, doc int
	}
	var found []candidate
	n := utf8.RuneCountInString(word)
	for rows.Next() {
		var c candidate
		if err := rows.Scan(&c.term, &c.doc); err != nil {
			return nil, fmt.Errorf("read vocabulary: %w", err)
		}
		if strings.HasPrefix(c.term, word) {
			return nil, nil
		}
		// Compare with the whole term and, since every word is a prefix,
		// with the term cut to the word's length.
		tr := []rune(c.term)
		c.dist = distance(word, c.term, typos)
		if len(tr) > n {
			c.dist = min(c.dist, distance(word, string(tr[:n]), typos))
		}
		if c.dist <= typos {
			found = append(found, c)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read vocabulary: %w", err)
	}
	slices.SortFunc(found, func(a, b candidate) int {
		if c := cmp.Compare(a.dist, b.dist); c != 0 {
			return c
		}
		return cmp.Compare(b.doc, a.doc)
	})
	terms := make([]string, 0, min(len(found), maxAlternatives))
	for _, c := range found[:min(len(found), maxAlternatives)] {
		terms = append(terms, c.term)
	}
	return terms, nil
}

func allowedTypos(word string) int {
	switch n := utf8.RuneCountInString(word); {
	case n >= twoTyposLen:
		return 2
	case n >= oneTypoLen:
		return 1
	}
	return 0
}

// fold removes diacritics as the tokenizer's remove_diacritics does, so
// that a query word compares with the vocabulary's terms.
func fold(s string) string {
	var b strings.Builder
	for _, r := range norm.NFD.String(s) {
		if !unicode.Is(unicode.Mn, r) {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// distance is the optimal-string-alignment distance between a and b (edits
// are insertions, deletions, substitutions and swaps of neighbours), or
// limit+1 as soon as it must exceed limit.
func distance(a, b string, limit int) int {
	ra, rb := []rune(a), []rune(b)
	if d := len(ra) - len(rb); d > limit || -d > limit {
		return limit + 1
	}
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		best := cur[0]
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
			best = min(best, cur[j])
		}
		if best > limit {
			return limit + 1
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}
