package sqlite

import (
	"strings"
	"testing"
)

func TestMatchQuery(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"hosting", `"hosting"*`},
		{"Hosting back", `"hosting"* AND "back"*`},
		{`"hosting" NEAR(a b) -x col:y ^z *`, `"hosting"* AND "near"* AND "a"* AND "b"* AND "x"* AND "col"* AND "y"* AND "z"*`},
		{"ada@example.com", `"ada"* AND "example"* AND "com"*`},
		{"naïve café 2024", `"naïve"* AND "café"* AND "2024"*`},
		{"a a A", `"a"*`},
		{`'"():*-^+`, ""},
		{"", ""},
		{strings.Repeat("w ", 3) + strings.Repeat("x", 5), `"w"* AND "xxxxx"*`},
	} {
		if got := matchQuery(tc.in); got != tc.want {
			t.Errorf("matchQuery(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
	var many []string
	for i := range 40 {
		many = append(many, strings.Repeat("a", i+1))
	}
	if got := strings.Count(matchQuery(strings.Join(many, " ")), "*"); got != maxQueryTerms {
		t.Errorf("a 40-word query kept %d terms, want %d", got, maxQueryTerms)
	}
}
