package finalize_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/catalog-import/catalog-import/internal/finalize"
	"github.com/catalog-import/catalog-import/internal/state"
)

// TestFinalizeWritesTheBatchReport: finalization stores report.html beside
// the error report, with the batch's final status and numbers and a link to
// the error report.
func TestFinalizeWritesTheBatchReport(t *testing.T) {
	t.Parallel()
	db := seed(t)
	rep := &memReports{}
	b, err := finalize.Finalize(context.Background(), finalize.Deps{Store: db, Reports: rep, Now: func() time.Time {
		return time.Date(2031, 3, 14, 15, 9, 26, 0, time.UTC)
	}}, "b", "")
	if err != nil {
		t.Fatal(err)
	}
	if b.Status != state.BatchCompletedWithErrors {
		t.Fatalf("status %s", b.Status)
	}
	page := rep.html.String()
	for _, want := range []string{
		`<span id="status" class="status completed-with-errors">COMPLETED_WITH_ERRORS</span>`,
		`<span class="n" data-value="20">20</span> rows`,
		`<span class="n" data-value="19">19</span> imported`,
		`<span class="n" data-value="1">1</span> failed`,
		`data-key="InvalidNumber" data-count="1"`,
		`<a href="errors.csv">`,
		`<dt>finished</dt><dd>2031-03-14 15:09:26 UTC</dd>`,
		`data-shard="1"`, // shard lines from the progress samples the checkpoints left
	} {
		if !strings.Contains(page, want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
}
