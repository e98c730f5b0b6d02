package edge

import (
	"net/http"
	"strconv"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	ups "selfhost.dev/edgeapp/edge/upstream"
)

// metrics are the edge's collectors, registered once per Server on the
// registry it was given; route tables bind their label values at build.
type metrics struct {
	requests       *prometheus.CounterVec
	duration       *prometheus.HistogramVec
	upstreamErrors *prometheus.CounterVec
	authFailures   *prometheus.CounterVec
	reloads        *prometheus.CounterVec
	lastReload     prometheus.Gauge
	inFlight       prometheus.Gauge
	logDropped     prometheus.Counter
	upstream       *ups.Metrics // the pools' series
	forwardAuth    *prometheus.CounterVec
	denied         *prometheus.CounterVec
	encodeBytes    *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edge_requests_total",
			Help: "Requests answered, by route, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "edge_request_duration_seconds",
			Help:    "Time from request headers to the end of the response, by route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"route"}),
		upstreamErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edge_upstream_errors_total",
			Help: "Failed upstream round trips, by route and kind (refused, unreachable, timeout, canceled, too_large).",
		}, []string{"route", "kind"}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edge_auth_failures_total",
			Help: "Basic Auth attempts with wrong credentials, by route.",
		}, []string{"route"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edge_config_reloads_total",
			Help: "Configuration reloads, by result (success, failure).",
		}, []string{"result"}),
		lastReload: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "edge_config_last_reload_success_timestamp_seconds",
			Help: "When the configuration was last loaded successfully.",
		}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "edge_requests_in_flight",
			Help: "Requests being served, websockets and streams included.",
		}),
		logDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "edge_access_log_dropped_total",
			Help: "Access log lines dropped because the log writer fell behind.",
		}),
		encodeBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edge_encode_bytes_total",
			Help: "Bytes of responses the edge compressed, by route, encoding and stage (in: before, out: after).",
		}, []string{"route", "encoding", "stage"}),
	}
	m.forwardAuth = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "edge_forward_auth_total",
		Help: "Forward-auth checks, by route and result (allowed, denied, error: the auth server unreachable or too slow).",
	}, []string{"route", "result"})
	m.denied = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "edge_denied_total",
		Help: "Requests refused before any credentials were looked at, by route and reason (ip, rate_limit).",
	}, []string{"route", "reason"})
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.upstreamErrors, m.authFailures,
		m.reloads, m.lastReload, m.inFlight, m.logDropped, m.forwardAuth, m.denied, m.encodeBytes} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	var err error
	if m.upstream, err = ups.NewMetrics(reg); err != nil {
		return nil, err
	}
	m.reloads.WithLabelValues("success")
	m.reloads.WithLabelValues("failure")
	return m, nil
}

// methods are the method label values; anything else is "other", so a
// client cannot grow the series count.
var methods = [...]string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
	http.MethodPatch, http.MethodDelete, http.MethodOptions, "other"}

func methodIndex(m string) int {
	for i, name := range methods[:len(methods)-1] {
		if m == name {
			return i
		}
	}
	return len(methods) - 1
}

// routeMetrics are one route's series, bound once so that counting a request
// costs no label hashing. Request counters are bound on first use for each
// method and code, then read without locks.
type routeMetrics struct {
	route        string
	requests     *prometheus.CounterVec
	counters     [len(methods)][500]atomic.Pointer[prometheus.Counter] // codes 100..599
	duration     prometheus.Observer
	authFailures prometheus.Counter
	errors       *prometheus.CounterVec
	encodeBytes  *prometheus.CounterVec
}

func (m *metrics) forRoute(name string) *routeMetrics {
	return &routeMetrics{
		route:        name,
		requests:     m.requests,
		duration:     m.duration.WithLabelValues(name),
		authFailures: m.authFailures.WithLabelValues(name),
		errors:       m.upstreamErrors,
		encodeBytes:  m.encodeBytes,
	}
}

// encoded counts the bytes of one compressed response; enc "" (not
// compressed) counts nothing.
func (rm *routeMetrics) encoded(enc string, in, out int64) {
	if enc == "" {
		return
	}
	rm.encodeBytes.WithLabelValues(rm.route, enc, "in").Add(float64(in))
	rm.encodeBytes.WithLabelValues(rm.route, enc, "out").Add(float64(out))
}

// observe counts one finished request.
func (rm *routeMetrics) observe(method string, code int, seconds float64) {
	rm.duration.Observe(seconds)
	if code < 100 || code > 599 {
		rm.requests.WithLabelValues(rm.route, methods[methodIndex(method)], strconv.Itoa(code)).Inc()
		return
	}
	mi := methodIndex(method)
	slot := &rm.counters[mi][code-100]
	c := slot.Load()
	if c == nil {
		counter := rm.requests.WithLabelValues(rm.route, methods[mi], strconv.Itoa(code))
		slot.Store(&counter)
		c = &counter
	}
	(*c).Inc()
}

func (rm *routeMetrics) upstreamError(kind string) {
	rm.errors.WithLabelValues(rm.route, kind).Inc()
}
