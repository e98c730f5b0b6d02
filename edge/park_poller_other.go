//go:build !linux

package edge

import "errors"

// parkPoller has no epoll on this system: a parked connection waits for its
// next byte on a goroutine of its own (memory.go), as before.
type parkPoller struct{}

func newParkPoller(func(*parkConn)) (*parkPoller, error) {
	return nil, errors.New("no epoll on this system")
}

func (*parkPoller) add(*parkConn) bool { return false }
func (*parkPoller) remove(*parkConn)   {}
func (*parkPoller) Close()             {}
