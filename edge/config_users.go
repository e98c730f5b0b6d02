package edge

// This file parses users: the named Basic Auth credential sets.

import (
	"fmt"
	"strings"

	"golang.org/x/crypto/bcrypt"
	"gopkg.in/yaml.v3"
)

func (l *loader) users(cfg *Config, n *yaml.Node) {
	l.fields(n, "users", nil, func(set string, v *yaml.Node) {
		var users []User
		before := len(l.errs)
		names := make(map[string]bool)
		if v.Kind == yaml.SequenceNode && len(v.Content) == 0 || v.Tag == "!!null" {
			l.errorf(v, "users.%s: no users", set)
			return
		}
		l.list(v, "users."+set, func(i int, item *yaml.Node) {
			where := fmt.Sprintf("users.%s[%d]", set, i)
			var u User
			var hashNode *yaml.Node
			hashOK := false
			l.fields(item, where, userKeys, func(k string, v2 *yaml.Node) {
				switch k {
				case "user":
					u.Name, _ = l.str(v2, where+".user")
				case "hash":
					hashNode = v2
					u.Hash, hashOK = l.str(v2, where+".hash")
				}
			})
			switch {
			case u.Name == "":
				l.errorf(item, "%s: user is missing", where)
				return
			case strings.ContainsAny(u.Name, ":") || strings.ContainsFunc(u.Name, func(r rune) bool { return r < ' ' }):
				l.errorf(item, "%s: user %q may not hold ':' or control characters", where, u.Name)
				return
			case names[u.Name]:
				l.errorf(item, "%s: user %q repeated", where, u.Name)
				return
			case hashNode == nil:
				l.errorf(item, "%s: hash is missing (make one with `edge hash-password`)", where)
				return
			}
			cost, err := bcrypt.Cost([]byte(u.Hash))
			switch {
			case err == nil:
			case !hashOK:
				return // an unset variable, already reported
			case u.Hash == "" && strings.Contains(hashNode.Value, "${"):
				// An empty variable would otherwise drop the user silently.
				l.errorf(hashNode, "%s.hash: %q is empty (want a bcrypt hash from `edge hash-password`)", where, hashNode.Value)
				return
			default:
				l.errorf(hashNode, "%s.hash: not a bcrypt hash (make one with `edge hash-password`)", where)
				return
			}
			if cost > maxBcryptCost {
				// Each login, and each unknown user's dummy comparison, would take seconds.
				l.errorf(hashNode, "%s.hash: bcrypt cost %d is too slow (at most %d)", where, cost, maxBcryptCost)
				return
			}
			names[u.Name] = true
			users = append(users, u)
		})
		if len(users) == 0 && len(l.errs) == before {
			l.errorf(v, "users.%s: no users", set)
		}
		cfg.Users[set] = users
	})
}

// maxBcryptCost bounds the cost of configured hashes: cost 16 already takes
// about five seconds a verification.
const maxBcryptCost = 16
