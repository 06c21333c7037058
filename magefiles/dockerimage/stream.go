package dockerimage

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/moby/moby/api/types/jsonstream"
)

// EngineError is an error the engine reported inside a build, push or pull
// stream, with its message verbatim: the builder's or the registry's words.
type EngineError struct {
	Code    int
	Message string
}

func (e *EngineError) Error() string { return e.Message }

// message is one record of the engine's JSON stream. Older engines put the
// error text in "error" as well as (or instead of) "errorDetail".
type message struct {
	jsonstream.Message
	ErrorText string `json:"error,omitempty"`
}

// readStream copies the progress of a build, push or pull stream to out as
// lines and hands each aux record to aux. It returns the stream's error
// record as an *EngineError.
func readStream(r io.Reader, out io.Writer, aux func(json.RawMessage) error) error {
	dec := json.NewDecoder(r)
	countdown := map[string]int{} // seconds left of a layer's "Retrying in N seconds"
	for {
		var m message
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return fmt.Errorf("read the engine's progress stream: %w", err)
		}
		switch {
		case m.Error != nil && m.Error.Message != "":
			return &EngineError{Code: m.Error.Code, Message: strings.TrimSpace(m.Error.Message)}
		case m.ErrorText != "":
			return &EngineError{Message: strings.TrimSpace(m.ErrorText)}
		}
		if m.Aux != nil && aux != nil {
			if err := aux(*m.Aux); err != nil {
				return err
			}
		}
		// The engine counts down each retry second by second: keep the
		// first line of each countdown.
		var left int
		if _, err := fmt.Sscanf(m.Status, "Retrying in %d", &left); err == nil {
			prev, counting := countdown[m.ID]
			countdown[m.ID] = left
			if counting && left < prev {
				continue
			}
		} else {
			delete(countdown, m.ID)
		}
		switch {
		case m.Stream != "":
			_, _ = io.WriteString(out, m.Stream)
		case m.Status != "" && m.Progress != nil && m.Progress.Total > 0:
			// Byte counters of a layer in flight: too many to be useful as lines.
		case m.Status != "" && m.ID != "":
			fmt.Fprintf(out, "%s: %s\n", m.ID, m.Status)
		case m.Status != "":
			fmt.Fprintln(out, m.Status)
		}
	}
}
