// Package iamcheck holds the test that keeps template.yaml's IAM roles in
// step with the code: it expands the SAM template into plain CloudFormation
// with aws-sam-translator (testdata/expand.py) and checks that each
// function's role allows the AWS operations that function makes.
package iamcheck
