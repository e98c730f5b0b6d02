package main

import (
	"os"
	"sync"
	"testing"
)

// appBin is the app binary buildApp builds once for the tests that run it
// as a process.
var appBin struct {
	once sync.Once
	dir  string
	path string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if appBin.dir != "" {
		os.RemoveAll(appBin.dir)
	}
	os.Exit(code)
}
