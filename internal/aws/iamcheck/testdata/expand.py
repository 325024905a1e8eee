"""Expand template.yaml with aws-sam-translator and print, as JSON:
"roles": each function's IAM role (its managed policy ARNs and its inline
statements, with the intrinsics resolved for one stack: name, account and
region given on the command line), and "template": the expanded template
as CloudFormation sees it (intrinsics left as they are).
Usage: expand.py TEMPLATE STACK ACCOUNT REGION.
Exit status 3: aws-sam-translator is not installed."""
import json
import os
import re
import sys

try:
    from samtranslator.translator.transform import transform
    from samtranslator.yaml_helper import yaml_parse
except ImportError:
    sys.exit(3)

path, stack, account, region = sys.argv[1:5]
tpl = yaml_parse(open(path).read())
for r in tpl["Resources"].values():
    if r["Type"] == "AWS::Serverless::Function":
        r["Properties"]["CodeUri"] = "s3://bucket/code.zip"  # the translator wants an S3 URI


class NoManagedPolicies:
    def load(self):
        return {}


os.environ.setdefault("AWS_DEFAULT_REGION", region)
cfn = transform(tpl, {}, NoManagedPolicies())
res = cfn["Resources"]
params = cfn.get("Parameters", {})
pseudo = {"AWS::StackName": stack, "AWS::AccountId": account, "AWS::Region": region,
          "AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com"}


def name_of(logical):
    r = res[logical]
    p = r.get("Properties", {})
    t = r["Type"]
    key = {"AWS::DynamoDB::Table": "TableName", "AWS::SQS::Queue": "QueueName",
           "AWS::SNS::Topic": "TopicName", "AWS::S3::Bucket": "BucketName",
           "AWS::Logs::LogGroup": "LogGroupName", "AWS::Lambda::Function": "FunctionName"}.get(t)
    if key and key in p:
        return resolve(p[key])
    return logical


def arn_of(logical):
    t, n = res[logical]["Type"], name_of(logical)
    return {"AWS::DynamoDB::Table": f"arn:aws:dynamodb:{region}:{account}:table/{n}",
            "AWS::SQS::Queue": f"arn:aws:sqs:{region}:{account}:{n}",
            "AWS::SNS::Topic": f"arn:aws:sns:{region}:{account}:{n}",
            "AWS::S3::Bucket": f"arn:aws:s3:::{n}",
            "AWS::Logs::LogGroup": f"arn:aws:logs:{region}:{account}:log-group:{n}:*",
            "AWS::Lambda::Function": f"arn:aws:lambda:{region}:{account}:function:{n}",
            "AWS::KMS::Key": f"arn:aws:kms:{region}:{account}:key/{logical}"}.get(t, logical)


def ref(name):
    if name in pseudo:
        return pseudo[name]
    if name in params:
        return str(params[name].get("Default", name))
    t = res[name]["Type"]
    if t == "AWS::SQS::Queue":
        return f"https://sqs.{region}.amazonaws.com/{account}/{name_of(name)}"
    if t == "AWS::SNS::Topic":
        return arn_of(name)
    return name_of(name)


def getatt(logical, attr):
    if attr == "Arn":
        return arn_of(logical)
    if attr in ("QueueName", "TopicName"):
        return name_of(logical)
    if attr == "QueueUrl":
        return ref(logical)
    return f"{logical}.{attr}"


def sub(s, extra):
    def one(m):
        k = m.group(1)
        if k in extra:
            return str(extra[k])
        if "." in k:
            return getatt(*k.split(".", 1))
        return ref(k)
    return re.sub(r"\$\{([^}!]+)\}", one, s)


def resolve(v):
    if isinstance(v, dict) and len(v) == 1:
        (k, a), = v.items()
        if k == "Ref":
            return ref(a)
        if k == "Fn::GetAtt":
            return getatt(*(a if isinstance(a, list) else a.split(".", 1)))
        if k == "Fn::Sub":
            if isinstance(a, list):
                return sub(a[0], {n: resolve(x) for n, x in a[1].items()})
            return sub(a, {})
        if k == "Fn::Join":
            return a[0].join(resolve(x) for x in a[1])
    if isinstance(v, dict):
        return {k: resolve(x) for k, x in v.items()}
    if isinstance(v, list):
        return [resolve(x) for x in v]
    return v


out = {}
for name, r in res.items():
    if r["Type"] != "AWS::Lambda::Function":
        continue
    role = r["Properties"]["Role"]["Fn::GetAtt"][0]
    rp = res[role]["Properties"]
    stmts = []
    for pol in rp.get("Policies", []):
        for st in resolve(pol["PolicyDocument"])["Statement"]:
            acts = st.get("Action", [])
            rs = st.get("Resource", [])
            stmts.append({"sid": st.get("Sid", ""), "effect": st.get("Effect", "Allow"),
                          "actions": acts if isinstance(acts, list) else [acts],
                          "resources": rs if isinstance(rs, list) else [rs],
                          "condition": st.get("Condition")})
    out[name] = {"role": role, "managed": resolve(rp.get("ManagedPolicyArns", [])), "statements": stmts}
json.dump({"roles": out, "template": cfn}, sys.stdout, indent=1, sort_keys=True)
