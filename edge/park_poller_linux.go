//go:build linux

package edge

import (
	"errors"
	"sync"
	"syscall"
)

// parkPoller waits for the next byte of every parked connection on one
// epoll instance and one goroutine, so that a parked connection holds no
// goroutine of its own: a goroutine's stack (2 KiB at least, often more)
// and its g were most of what a parked connection cost.
//
// A connection is registered one-shot for input, end of stream and errors.
// Its socket stays registered with Go's own poller as well (an fd may be in
// several epoll sets); Go's poller only notes the readiness, which the read
// that follows the wake-up then finds. A closed socket leaves the set by
// itself when its file is released, so nothing is ever deleted from the
// set: a connection parked again re-arms its registration (EEXIST → MOD).
type parkPoller struct {
	epfd  int
	wakeR int // the read end of a pipe in the set: Close writes to the other end
	wakeW int
	ready func(*parkConn) // called, on the loop, for a connection with something to read

	mu    sync.Mutex
	conns map[int32]*parkConn // by socket fd; only open, parked connections
	done  chan struct{}
	once  sync.Once
}

// newParkPoller returns a poller that calls ready for each connection
// that has something to read, or an error if the system refuses an epoll
// instance (the listener then waits on a goroutine per connection).
func newParkPoller(ready func(*parkConn)) (*parkPoller, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	var p [2]int
	if err := syscall.Pipe2(p[:], syscall.O_CLOEXEC|syscall.O_NONBLOCK); err != nil {
		syscall.Close(epfd)
		return nil, err
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(p[0])}
	if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, p[0], &ev); err != nil {
		syscall.Close(epfd)
		syscall.Close(p[0])
		syscall.Close(p[1])
		return nil, err
	}
	e := &parkPoller{epfd: epfd, wakeR: p[0], wakeW: p[1], ready: ready,
		conns: make(map[int32]*parkConn), done: make(chan struct{})}
	go e.loop()
	return e, nil
}

// add starts waiting for c's next byte. It reports false if c has no
// socket to wait on, or the system refused it: the caller waits otherwise.
func (e *parkPoller) add(c *parkConn) bool {
	sc, ok := c.Conn.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	added := false
	err = rc.Control(func(fd uintptr) {
		key := int32(fd)
		e.mu.Lock()
		c.fd = key
		e.conns[key] = c // before the event can come
		e.mu.Unlock()
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT, Fd: key}
		err := syscall.EpollCtl(e.epfd, syscall.EPOLL_CTL_ADD, int(fd), &ev)
		if errors.Is(err, syscall.EEXIST) { // parked before: re-arm
			err = syscall.EpollCtl(e.epfd, syscall.EPOLL_CTL_MOD, int(fd), &ev)
		}
		if err != nil {
			e.mu.Lock()
			if e.conns[key] == c {
				delete(e.conns, key)
			}
			e.mu.Unlock()
			return
		}
		added = true
	})
	return err == nil && added
}

// remove stops waiting for c (before it is closed for its idle timeout).
// An event already on its way finds nothing and is dropped.
func (e *parkPoller) remove(c *parkConn) {
	e.mu.Lock()
	if e.conns[c.fd] == c {
		delete(e.conns, c.fd)
	}
	e.mu.Unlock()
}

func (e *parkPoller) loop() {
	defer close(e.done)
	events := make([]syscall.EpollEvent, 128)
	for {
		n, err := syscall.EpollWait(e.epfd, events, -1)
		if err != nil {
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			return
		}
		for _, ev := range events[:n] {
			if ev.Fd == int32(e.wakeR) {
				return
			}
			e.mu.Lock()
			c := e.conns[ev.Fd]
			delete(e.conns, ev.Fd)
			e.mu.Unlock()
			if c != nil {
				// An event left over from a socket closed since, whose fd
				// was reused by another parked connection, wakes that one
				// early: it then waits for its byte on a goroutine.
				e.ready(c)
			}
		}
	}
}

// Close stops the loop and releases the epoll instance. Parked
// connections are the listener's to close.
func (e *parkPoller) Close() {
	e.once.Do(func() {
		_, _ = syscall.Write(e.wakeW, []byte{0})
		<-e.done
		syscall.Close(e.epfd)
		syscall.Close(e.wakeR)
		syscall.Close(e.wakeW)
	})
}
