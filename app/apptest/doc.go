// Package apptest holds the contract test suites that every adapter of one
// app interface runs, so that SQLite and PostgreSQL stores, local and S3
// blob stores, built-in, PostgreSQL and Meilisearch search, and the log,
// SMTP and SES mailers all behave the same:
//
//	func TestStore(t *testing.T) {
//		apptest.TestStore(t, func(t *testing.T) app.Store {
//			db := openFreshDatabase(t) // closed by t.Cleanup
//			return db
//		})
//	}
//
// Each open function must return a fresh, empty backend and arrange its
// Close (if any) with t.Cleanup. Suites run their cases as subtests and call
// open once per subtest.
//
// It also holds PDF, a tiny PDF generator for tests that need a real file.
package apptest
