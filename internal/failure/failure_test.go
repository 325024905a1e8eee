package failure_test

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/catalog-import/catalog-import/internal/failure"
)

// TestImportErrorSurvivesWrapping: code branches on the reason found with
// errors.As, through any number of %w wraps, never on the message.
func TestImportErrorSurvivesWrapping(t *testing.T) {
	t.Parallel()
	cause := errors.New("connection reset")
	err := fmt.Errorf("checkpoint shard 3: %w", fmt.Errorf("write: %w", failure.Wrap(failure.NetworkTimeout, "", cause, "")))
	ie, ok := failure.As(err)
	if !ok || ie.Reason != failure.NetworkTimeout || ie.Layer != failure.LayerInfrastructure || !errors.Is(err, cause) {
		t.Fatalf("As(%v) = %+v, %v", err, ie, ok)
	}
	if failure.ReasonOf(errors.New("plain")) != failure.Internal {
		t.Error("an error without a reason must count as Internal")
	}
}

func TestReasonLayers(t *testing.T) {
	t.Parallel()
	want := map[failure.Layer]int{failure.LayerSyntax: 4, failure.LayerSemantic: 4, failure.LayerBusiness: 4, failure.LayerInfrastructure: 7}
	got := map[failure.Layer]int{}
	for _, r := range failure.Reasons() {
		got[r.Layer()]++
		if !r.Known() {
			t.Errorf("%s is listed but not known", r)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("reasons per layer %v, want %v (the table of docs/invariants.md)", got, want)
	}
	for _, r := range []failure.Reason{failure.Throttled, failure.NetworkTimeout, failure.ServiceUnavailable, failure.CircuitOpen} {
		if !r.Transient() {
			t.Errorf("%s should be transient", r)
		}
	}
	if failure.AccessDenied.Transient() || failure.SourceChanged.Transient() {
		t.Error("AccessDenied and SourceChanged are not transient")
	}
}

func TestNeutralize(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"=SUM(A1:A3)": "'=SUM(A1:A3)", "+1": "'+1", "-5": "'-5", "@cmd": "'@cmd",
		"\tx": "'\tx", "\rx": "'\rx", "plain": "plain", "": "", "a=b": "a=b", "商品": "商品",
	} {
		if got := failure.Neutralize(in); got != want {
			t.Errorf("Neutralize(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestReportWriter(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	rw, err := failure.NewReportWriter(&b, []string{"sku", "name"}, false)
	if err != nil {
		t.Fatal(err)
	}
	rw.Write(failure.Record{Row: 3, Reason: failure.InvalidValue, Layer: failure.LayerSemantic, Field: "name", Message: "bad", Cells: []string{"A-1", "=HYPERLINK(\"x\")"}})
	rw.Write(failure.Record{Row: 4, Reason: failure.MalformedRow, Layer: failure.LayerSyntax, Message: "unbalanced quote", RawLine: "A-2,\"oops\r\n"})
	if err := rw.Flush(); err != nil {
		t.Fatal(err)
	}
	want := "row,reason,layer,field,message,sku,name\n" +
		"3,InvalidValue,semantic,name,bad,A-1,\"'=HYPERLINK(\"\"x\"\")\"\n" +
		"4,MalformedRow,syntax,,unbalanced quote,\"A-2,\"\"oops\"\n"
	if b.String() != want {
		t.Errorf("report:\n%s\nwant:\n%s", b.String(), want)
	}
}

// TestParseReason: every --reason flag takes a reason code in any case, and
// only a code.
func TestParseReason(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want failure.Reason
		ok   bool
	}{
		{"DuplicateSKU", failure.DuplicateSKU, true},
		{"duplicatesku", failure.DuplicateSKU, true},
		{"ACCESSDENIED", failure.AccessDenied, true},
		{"Denied", "", false},
		{"", "", false},
	} {
		if got, ok := failure.ParseReason(tc.in); got != tc.want || ok != tc.ok {
			t.Errorf("ParseReason(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
	for _, tc := range []struct {
		msg  string
		want failure.Reason
		ok   bool
	}{
		{"AccessDenied: s3 GetObject", failure.AccessDenied, true},
		{failure.New(failure.Throttled, "", "busy").Error(), failure.Throttled, true},
		{"escalated: AccessDenied", "", false},
		{"no code here", "", false},
	} {
		if got, ok := failure.LeadingReason(tc.msg); got != tc.want || ok != tc.ok {
			t.Errorf("LeadingReason(%q) = %q, %v; want %q, %v", tc.msg, got, ok, tc.want, tc.ok)
		}
	}
}

// TestCompare: records sort by sheet, bytewise, then by row, as the stores
// list them.
func TestCompare(t *testing.T) {
	for _, tc := range []struct {
		a, b failure.Record
		want int
	}{
		{failure.Record{Sheet: "A", Row: 9}, failure.Record{Sheet: "B", Row: 2}, -1},
		{failure.Record{Sheet: "B", Row: 2}, failure.Record{Sheet: "A", Row: 9}, 1},
		{failure.Record{Sheet: "A", Row: 2}, failure.Record{Sheet: "A", Row: 10}, -1},
		{failure.Record{Sheet: "A", Row: 10}, failure.Record{Sheet: "A", Row: 2}, 1},
		{failure.Record{Sheet: "A", Row: 2, Reason: failure.MissingField}, failure.Record{Sheet: "A", Row: 2}, 0},
		{failure.Record{Sheet: "", Row: 5}, failure.Record{Sheet: "A", Row: 1}, -1},
		{failure.Record{Sheet: "Z", Row: 1}, failure.Record{Sheet: "a", Row: 1}, -1}, // bytewise
	} {
		if got := failure.Compare(tc.a, tc.b); got != tc.want {
			t.Errorf("Compare((%q, %d), (%q, %d)) = %d, want %d", tc.a.Sheet, tc.a.Row, tc.b.Sheet, tc.b.Row, got, tc.want)
		}
	}
}
