package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// requireJSON refuses a request body that does not say it is JSON (UTF-8,
// the only encoding JSON has).
func requireJSON(r *http.Request) error {
	const want = "Content-Type must be application/json"
	values := r.Header.Values("Content-Type")
	if len(values) != 1 {
		return errors.New(want)
	}
	media, params, err := mime.ParseMediaType(values[0])
	if err != nil || media != "application/json" {
		return errors.New(want)
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return errors.New(want + "; its charset, if given, utf-8")
	}
	return nil
}

// readJSON reads the body, at most limit bytes, as exactly one JSON object
// into dst, a pointer to a struct whose fields have json tags. Its errors
// are fixed messages that name the field when there is one: never a Go type,
// encoding/json's wording or the client's value.
func readJSON(w http.ResponseWriter, r *http.Request, limit int64, dst any) error {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return fmt.Errorf("body exceeds the limit of %d bytes", limit)
	case err != nil:
		return errors.New("body could not be read")
	case len(bytes.TrimSpace(data)) == 0:
		return errors.New("body is empty; want a JSON object")
	// encoding/json replaces invalid UTF-8 and escaped lone surrogates
	// with U+FFFD: past this point they could not be told from a real
	// U+FFFD, so they are refused first.
	case !utf8.Valid(data):
		return errors.New("body is not valid UTF-8")
	case loneSurrogate(data):
		return errors.New(`body is not valid Unicode: a \u escape of a lone UTF-16 surrogate (\ud800 to \udfff)`)
	}

	// First the shape: one object, every member one of dst's fields by
	// its exact name (encoding/json would also take "TITLE" for "title").
	var members map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&members); err != nil {
		var typ *json.UnmarshalTypeError
		if errors.As(err, &typ) {
			return errors.New("body must be a JSON object")
		}
		return errors.New("body is not valid JSON")
	}
	if members == nil { // the body was null
		return errors.New("body must be a JSON object")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("body must hold a single JSON object")
	}
	kinds := jsonKinds(dst)
	for _, name := range slices.Sorted(maps.Keys(members)) {
		if _, ok := kinds[name]; !ok {
			return fmt.Errorf("%s: unknown field; the fields are %s", fieldName(name), strings.Join(slices.Sorted(maps.Keys(kinds)), ", "))
		}
	}

	// Then the values.
	if err := json.Unmarshal(data, dst); err != nil {
		var typ *json.UnmarshalTypeError
		if errors.As(err, &typ) && kinds[typ.Field] != "" {
			return fmt.Errorf("%s: must be a %s", typ.Field, kinds[typ.Field])
		}
		return errors.New("body has a value of the wrong type")
	}
	return nil
}

// jsonKinds maps the JSON names of the fields of the struct dst points to
// to the JSON type each takes, in JSON's words.
func jsonKinds(dst any) map[string]string {
	t := reflect.TypeOf(dst).Elem()
	kinds := make(map[string]string, t.NumField())
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		kinds[name] = jsonKind(f.Type)
	}
	return kinds
}

func jsonKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Slice, reflect.Array:
		return "array"
	}
	return "object"
}

// fieldName quotes a client's field name for an error, cut short: it is
// the client's own text, but need not come back at full length.
func fieldName(s string) string {
	const limit = 40
	if len(s) > limit {
		s = strings.ToValidUTF8(s[:limit], "") + "..."
	}
	return strconv.Quote(s)
}

// loneSurrogate reports whether data holds a \uXXXX escape of a UTF-16
// surrogate that is not part of a high-low pair. Escapes are followed
// one by one, so an escaped backslash before "u" is not taken for one.
func loneSurrogate(data []byte) bool {
	for i := 0; i < len(data); i++ {
		if data[i] != '\\' {
			continue
		}
		i++ // the escaped character
		r, ok := unicodeEscape(data, i)
		if !ok {
			continue // not \u, or malformed: the decoder reports that
		}
		i += 4 // the last hex digit
		switch {
		case r >= 0xDC00 && r <= 0xDFFF:
			return true // a low surrogate with no high one before it
		case r >= 0xD800 && r <= 0xDBFF:
			low, ok := unicodeEscape(data, i+2)
			if i+1 >= len(data) || data[i+1] != '\\' || !ok || low < 0xDC00 || low > 0xDFFF {
				return true
			}
			i += 6
		}
	}
	return false
}

// unicodeEscape reads the code unit of a "uXXXX" starting at data[i].
func unicodeEscape(data []byte, i int) (rune, bool) {
	if i+5 > len(data) || data[i] != 'u' {
		return 0, false
	}
	n, err := strconv.ParseUint(string(data[i+1:i+5]), 16, 16)
	return rune(n), err == nil
}
