// Package e2e holds the system tests of Catalog Import: whole imports through
// importctl, in process (cli.Main) or as a built binary that is killed, on
// the embedded engine and on `importctl dev` against moto. They check the
// invariants of docs/invariants.md end to end: crashes and resumes, duplicate
// SKUs across shards, faults, deadlines, the DLQ and triage chain, workbooks,
// the re-import of failed rows, and feeds of every write mode ending in
// upload order (feeds_*_test.go); and the README's local AWS section run as
// written (TestReadmeLocalAWS), with `importctl dev` starting and stopping
// its own emulator. The tests of the command line itself
// (flags, output formats, goldens) are in internal/cli.
//
// The package has no code of its own; its tests read the inputs of
// internal/cli/testdata/input and testdata/demo.
package e2e
