package catalog

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// This file holds the storage formats both sinks share for a SKU's stamps
// and for the holders besides its provenance (decision 17).

// EncodeStamps returns the compact text of st's stamps, existence and
// provenance order: "[!]order/created/tombstone/f0,f1,...,f8", decimal,
// where "!" marks a product that does not exist and an empty number equals
// order. A product one batch created with all its fields is "o//0/,,,,,,,,".
func EncodeStamps(st *State) string {
	return string(AppendStamps(make([]byte, 0, 48), st))
}

// AppendStamps appends EncodeStamps' text of st to b. The text has only
// digits, '-', '/', ',' and '!'.
func AppendStamps(b []byte, st *State) []byte {
	var order int64
	if st.Held() {
		order = st.Holders[0].Order
	}
	if !st.Exists {
		b = append(b, '!')
	}
	num := func(v int64) {
		if v != order {
			b = strconv.AppendInt(b, v, 10)
		}
	}
	b = strconv.AppendInt(b, order, 10)
	b = append(b, '/')
	num(st.Stamps.Created)
	b = append(b, '/')
	num(st.Stamps.Tombstone)
	b = append(b, '/')
	for f, v := range st.Stamps.Fields {
		if f > 0 {
			b = append(b, ',')
		}
		num(v)
	}
	return b
}

// DecodeStamps reads EncodeStamps' text. Empty text (a product stored before
// stamps existed) is an existing product with every stamp 0.
func DecodeStamps(s string) (st FieldStamps, exists bool, order int64, err error) {
	if s == "" {
		return FieldStamps{}, true, 0, nil
	}
	exists = !strings.HasPrefix(s, "!")
	parts := strings.Split(strings.TrimPrefix(s, "!"), "/")
	if len(parts) != 4 {
		return st, false, 0, fmt.Errorf("stamps %q: want 4 parts separated by /", s)
	}
	fields := strings.Split(parts[3], ",")
	if len(fields) != int(NumFields) {
		return st, false, 0, fmt.Errorf("stamps %q: %d field stamps, want %d", s, len(fields), NumFields)
	}
	if order, err = strconv.ParseInt(parts[0], 10, 64); err != nil {
		return st, false, 0, fmt.Errorf("stamps %q: %w", s, err)
	}
	num := func(t string, v *int64) {
		if t == "" {
			*v = order
		} else if n, e := strconv.ParseInt(t, 10, 64); e != nil && err == nil {
			err = fmt.Errorf("stamps %q: %w", s, e)
		} else {
			*v = n
		}
	}
	num(parts[1], &st.Created)
	num(parts[2], &st.Tombstone)
	for f, t := range fields {
		num(t, &st.Fields[f])
	}
	return st, exists, order, err
}

// holderJSON is one holder in EncodeHolders' text.
type holderJSON struct {
	BatchID    string         `json:"batch_id"`
	Order      int64          `json:"order"`
	Sheet      string         `json:"sheet"`
	SheetIndex int            `json:"sheet_index"`
	Row        int64          `json:"row"`
	Offset     int64          `json:"offset"`
	Length     int64          `json:"length"`
	Displaced  []displacedRef `json:"displaced,omitempty"`
}

// displacedRef is a displaced row of a holder (its SKU and batch are the
// holder's), the shape of the sinks' displaced lists.
type displacedRef struct {
	Sheet      string `json:"sheet"`
	SheetIndex int    `json:"sheet_index"`
	Row        int64  `json:"row"`
	Offset     int64  `json:"offset"`
	Length     int64  `json:"length"`
}

// EncodeHolders returns hs as JSON text, "" when hs is empty. Sinks store
// the holders after the provenance one (State.Holders[1:]) with it.
func EncodeHolders(hs []Holder) (string, error) {
	if len(hs) == 0 {
		return "", nil
	}
	js := make([]holderJSON, len(hs))
	for i, h := range hs {
		js[i] = holderJSON{BatchID: h.BatchID, Order: h.Order, Sheet: h.Source.Sheet, SheetIndex: h.Source.SheetIndex,
			Row: h.Source.Row, Offset: h.Offset, Length: h.Length}
		for _, d := range h.Displaced {
			js[i].Displaced = append(js[i].Displaced, displacedRef{Sheet: d.Source.Sheet, SheetIndex: d.Source.SheetIndex,
				Row: d.Source.Row, Offset: d.Offset, Length: d.Length})
		}
	}
	b, err := json.Marshal(js)
	return string(b), err
}

// DecodeHolders reads EncodeHolders' text of SKU sku ("" is none).
func DecodeHolders(sku, s string) ([]Holder, error) {
	if s == "" {
		return nil, nil
	}
	var js []holderJSON
	if err := json.Unmarshal([]byte(s), &js); err != nil {
		return nil, fmt.Errorf("product %s: holders: %w", sku, err)
	}
	hs := make([]Holder, len(js))
	for i, j := range js {
		hs[i] = Holder{BatchID: j.BatchID, Order: j.Order, Source: Position{SheetIndex: j.SheetIndex, Sheet: j.Sheet, Row: j.Row},
			Offset: j.Offset, Length: j.Length}
		for _, d := range j.Displaced {
			hs[i].Displaced = append(hs[i].Displaced, Product{SKU: sku, BatchID: j.BatchID,
				Source: Position{SheetIndex: d.SheetIndex, Sheet: d.Sheet, Row: d.Row}, Offset: d.Offset, Length: d.Length})
		}
	}
	return hs, nil
}
