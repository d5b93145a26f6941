package engine

import (
	"strconv"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestRouteRequestsCounter: a route's counter for a method and status is
// the vector's series of those labels, whether kept at hand (the first
// maxRouteSeries) or looked up each time (the rest).
func TestRouteRequestsCounter(t *testing.T) {
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "requests"}, []string{"route", "method", "code"})
	var rr routeRequests
	for round := range 2 { // the second finds the first's
		for status := 200; status < 200+maxRouteSeries+8; status++ {
			got := rr.counter(vec, "/r", "GET", status)
			if want := vec.WithLabelValues("/r", "GET", strconv.Itoa(status)); got != want {
				t.Fatalf("round %d, status %d: not the vector's series", round, status)
			}
		}
	}
	if n := len(*rr.m.Load()); n != maxRouteSeries {
		t.Fatalf("%d series kept, want %d", n, maxRouteSeries)
	}
}
