// Package iamcheck holds the tests that keep template.yaml in step with the
// code where moto cannot (decision 23). testdata/expand.py expands the SAM
// template into plain CloudFormation with aws-sam-translator and resolves
// each function's role for one stack; the tests skip, saying so, only when
// python3 or the translator is missing (`make deps` installs cfn-lint,
// which brings it).
//
//   - TestRecordedCallsAreAllowed runs the splitter, the worker and triage
//     on moto, records every request each makes, maps it to the IAM
//     authorizations it needs (accessesOf), and checks the function's role
//     allows each on its resource; every grant no request used must be
//     explained in notRecorded, and every explanation must still be needed.
//   - TestRolesAreWrittenOut: a role per function, no managed policy, no
//     wildcard action; TestRoleMatching pins the evaluator.
//   - TestTemplate checks the expanded template's alarms, key policy,
//     subscriptions, log groups, lifecycle, bucket policy, table
//     protection, OnFailure destination, S3 permission, worker cap,
//     canaries and tags; TestTemplateChecksCanFail shows each check fails
//     on the mistake it is about.
package iamcheck
