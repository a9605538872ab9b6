// W13: keep-alive HTTP client in Go net/http (run with GOMAXPROCS=1).
//
//	w13_http_client URL N CONC
//
// One http.Client whose Transport keeps CONC idle connections per host
// (the default keeps 2), a warm-up of CONC*10 GETs, then N GETs from CONC
// goroutines; prints time=, cpu= (/proc/self/stat user+system) and ok=.
package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func cpu() float64 {
	b, _ := os.ReadFile("/proc/self/stat")
	s := string(b)
	f := strings.Fields(s[strings.LastIndex(s, ")")+2:])
	u, _ := strconv.ParseFloat(f[11], 64)
	k, _ := strconv.ParseFloat(f[12], 64)
	return (u + k) / 100
}

func main() {
	url := os.Args[1]
	n, _ := strconv.Atoi(os.Args[2])
	conc, _ := strconv.Atoi(os.Args[3])
	tr := &http.Transport{MaxIdleConns: conc, MaxIdleConnsPerHost: conc, MaxConnsPerHost: conc}
	client := &http.Client{Transport: tr}
	var ok int64
	run := func(total int) {
		var wg sync.WaitGroup
		for i := 0; i < conc; i++ {
			count := total / conc
			if i < total%conc {
				count++
			}
			wg.Add(1)
			go func(count int) {
				defer wg.Done()
				for j := 0; j < count; j++ {
					r, err := client.Get(url)
					if err != nil {
						continue
					}
					b, err := io.ReadAll(r.Body)
					r.Body.Close()
					if err == nil && r.StatusCode == 200 && string(b) == "hello" {
						atomic.AddInt64(&ok, 1)
					}
				}
			}(count)
		}
		wg.Wait()
	}
	run(conc * 10)
	ok = 0
	c0, t0 := cpu(), time.Now()
	run(n)
	t1, c1 := time.Now(), cpu()
	fmt.Printf("time=%.4f cpu=%.4f ok=%d\n", t1.Sub(t0).Seconds(), c1-c0, ok)
}
