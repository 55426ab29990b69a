// xtrace reads an execution trace with golang.org/x/exp/trace (Go's own parser), every
// event, and prints per goroutine its transition count (transitions whose from-state is not
// Undetermined, as gdb-go trace --json counts them) and its state at the end, as JSON:
//
//	{"events": N, "goroutines": {"ID": {"transitions": N, "end_state": "Waiting"}, ...}}
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"

	"golang.org/x/exp/trace"
)

type g struct {
	Transitions int    `json:"transitions"`
	EndState    string `json:"end_state"`
}

func main() {
	f, err := os.Open(os.Args[1])
	if err != nil {
		panic(err)
	}
	defer f.Close()
	r, err := trace.NewReader(f)
	if err != nil {
		panic(err)
	}
	gs := map[trace.GoID]*g{}
	events := 0
	errText := ""
	for {
		ev, err := r.ReadEvent()
		if err == io.EOF {
			break
		}
		if err != nil {
			errText = err.Error()
			break
		}
		events++
		if ev.Kind() != trace.EventStateTransition {
			continue
		}
		st := ev.StateTransition()
		if st.Resource.Kind != trace.ResourceGoroutine {
			continue
		}
		from, to := st.Goroutine()
		id := st.Resource.Goroutine()
		s := gs[id]
		if s == nil {
			s = &g{}
			gs[id] = s
		}
		if from != trace.GoUndetermined {
			s.Transitions++
		}
		s.EndState = to.String()
	}
	out := map[string]any{"events": events, "error": errText}
	m := map[string]*g{}
	for id, s := range gs {
		m[strconv.FormatInt(int64(id), 10)] = s
	}
	out["goroutines"] = m
	b, _ := json.Marshal(out)
	fmt.Println(string(b))
}
