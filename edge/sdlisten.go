package edge

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// sdListenFdsStart is the first socket systemd passes (SD_LISTEN_FDS_START).
const sdListenFdsStart = 3

// systemdFiles returns the sockets systemd passed to process pid by socket
// activation, by name (LISTEN_FDNAMES, from FileDescriptorName= in the
// .socket unit), as sd_listen_fds_with_names(3) does. Without LISTEN_FDS
// for pid, it returns none. They are marked close-on-exec: a new process
// gets them from the Upgrader, not by accident.
func systemdFiles(getenv func(string) string, pid int) (map[string]*os.File, error) {
	if getenv("LISTEN_PID") != strconv.Itoa(pid) {
		return nil, nil
	}
	n, err := strconv.Atoi(getenv("LISTEN_FDS"))
	if err != nil || n < 0 {
		return nil, fmt.Errorf("systemd: bad LISTEN_FDS %q", getenv("LISTEN_FDS"))
	}
	if n == 0 {
		return nil, nil
	}
	names := strings.Split(getenv("LISTEN_FDNAMES"), ":")
	if len(names) != n {
		return nil, fmt.Errorf("systemd: %d sockets but LISTEN_FDNAMES %q: name them public and admin with FileDescriptorName=", n, getenv("LISTEN_FDNAMES"))
	}
	files := make(map[string]*os.File, n)
	for i, name := range names {
		fd := sdListenFdsStart + i
		syscall.CloseOnExec(fd)
		if _, dup := files[name]; dup {
			return nil, fmt.Errorf("systemd: two sockets named %q", name)
		}
		files[name] = os.NewFile(uintptr(fd), "systemd:"+name)
	}
	return files, nil
}
