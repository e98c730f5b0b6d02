package bench

// The layouts a scenario can run in. Pinned puts the proxy and the upstream
// on one CPU and the load generator on the other: CPU per request is then
// the proxy's alone. The unpinned layouts share every core; Unpinned2 also
// gives every proxy two of them (GOMAXPROCS=2, two nginx workers, two
// HAProxy threads), to show how each scales to a second core.
const (
	Pinned    = "pinned"
	Unpinned  = "unpinned"
	Unpinned2 = "unpinned-2"
)

// Layouts are the layouts the harness knows, in the order -layouts lists them.
var Layouts = []string{Pinned, Unpinned, Unpinned2}

// layoutPinned reports whether layout pins the servers and the load apart.
func layoutPinned(layout string) bool { return layout == Pinned }

// layoutProcs is the number of cores each proxy (and the upstream) is
// told to use in layout: GOMAXPROCS for the Go servers, workers for nginx,
// threads for HAProxy.
func layoutProcs(layout string) int {
	if layout == Unpinned2 {
		return 2
	}
	return 1
}

// layoutNote describes layout under a table.
func layoutNote(layout string) []string {
	if layout == Unpinned2 {
		return []string{"nothing pinned: proxy, upstream and wrk share every core; each proxy and the upstream use 2 cores (GOMAXPROCS=2, nginx worker_processes 2, HAProxy nbthread 2)"}
	}
	return layoutNotes(layoutPinned(layout))
}
