// Package iamcheck holds the tests that keep template.yaml's IAM roles in
// step with the code. testdata/expand.py expands the SAM template into
// plain CloudFormation with aws-sam-translator and resolves each
// function's role for one stack; the tests skip, saying so, only when
// python3 or the translator is missing (`make deps` installs cfn-lint,
// which brings it).
//
//   - TestRolesAllowWhatTheFunctionsDo checks a hand-written list of
//     operations per function (triage's among them).
//   - TestRecordedCallsAreAllowed runs the splitter and the worker on moto,
//     records every AWS call each makes (awstest.Requests), maps it to the
//     IAM actions it needs, and checks the function's role allows each on
//     that resource; it logs the actions a role allows that no call used.
package iamcheck
