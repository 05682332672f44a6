package telemetry

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestRegistryServes(t *testing.T) {
	c := prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Subsystem: "test", Name: "things_total", Help: "things"})
	c.Add(3)
	r, err := NewRegistry(c)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(Handler(r))
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(body), "onet_test_things_total 3") || !strings.Contains(string(body), "go_goroutines") {
		t.Fatalf("scrape lacks the counter or the Go collector:\n%.2000s", body)
	}
	if _, err := NewRegistry(c, c); err == nil {
		t.Fatal("registering the same collector twice succeeded")
	}
}
