// Package app holds the API server's domain: its types, its errors and the
// interfaces of the backends it needs (Store, BlobStore, SearchIndex, Mailer).
//
// Each backend lives in a subpackage named for what it wraps (app/sqlite,
// app/postgres, app/fsblob, app/s3, app/meili, app/logmail, app/smtp,
// app/ses); those import only this package and their SDK. The HTTP layer is
// app/http. Only cmd/app wires them together.
package app
