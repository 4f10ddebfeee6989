# A client in another language: Python stubs generated from proto/ with grpcio-tools (README,
# "Calling Baton from another language"), walking the README's lead flow end to end over real
# sockets: a team, a rep and a routing rule; a lead captured with two activities (a booked meeting
# and a free trial: 25 + 25 points under the default model, the MQL threshold); its score and
# stage in qualification; its assignment in distribution; the funnel in reporting.
# Run by the e2e test `a_generated_python_client_walks_the_lead_flow`:
#   python3 tests/third_party/lead_flow.py <proto dir> <capture> <qualification> <distribution> \
#       <reporting> <token>
# Needs grpcio and grpcio-tools (pip install grpcio-tools).
import importlib
import subprocess
import sys
import tempfile
import time

from google.protobuf.timestamp_pb2 import Timestamp
import grpc

proto_dir, capture_at, qualification_at, distribution_at, reporting_at, token = sys.argv[1:7]
out = tempfile.mkdtemp(prefix="baton-python-client-")
for area in ["capture", "qualification", "distribution", "reporting"]:
    files = {
        "capture": ["capture"],
        "qualification": ["qualification"],
        "distribution": ["distribution"],
        "reporting": ["reporting", "kpi", "planning"],
    }[area]
    for f in files:
        subprocess.run(
            [sys.executable, "-m", "grpc_tools.protoc", "-I", proto_dir,
             f"--python_out={out}", f"--grpc_python_out={out}",
             f"{proto_dir}/baton/{area}/v1/{f}.proto"],
            check=True,
        )
sys.path.insert(0, out)
capture = importlib.import_module("baton.capture.v1.capture_pb2")
capture_grpc = importlib.import_module("baton.capture.v1.capture_pb2_grpc")
qualification = importlib.import_module("baton.qualification.v1.qualification_pb2")
qualification_grpc = importlib.import_module("baton.qualification.v1.qualification_pb2_grpc")
distribution = importlib.import_module("baton.distribution.v1.distribution_pb2")
distribution_grpc = importlib.import_module("baton.distribution.v1.distribution_pb2_grpc")
reporting = importlib.import_module("baton.reporting.v1.reporting_pb2")
reporting_grpc = importlib.import_module("baton.reporting.v1.reporting_pb2_grpc")

auth = [("authorization", f"Bearer {token}")]


def eventually(what, check, seconds=60):
    deadline = time.time() + seconds
    while True:
        answer = check()
        if answer is not None:
            return answer
        if time.time() > deadline:
            sys.exit(f"timed out waiting for {what}")
        time.sleep(0.1)


d = distribution_grpc.DistributionServiceStub(grpc.insecure_channel(distribution_at))
d.CreateTeam(
    distribution.CreateTeamRequest(
        team_id="py-team",
        name="Python team",
        function=distribution.TEAM_FUNCTION_INSIDE_SALES,
        method=distribution.ROUTING_METHOD_ROUND_ROBIN,
    ),
    metadata=auth,
)
rep = d.CreateRep(
    distribution.CreateRepRequest(
        request_id="py-rep-1",
        name="Py Rep",
        email="py.rep@example.com",
        active=True,
        routing=distribution.RepRouting(
            team_id="py-team", time_zone="Asia/Tokyo", work_start_hour=9, work_end_hour=18
        ),
    ),
    metadata=auth,
)
d.SetRoutingRules(
    distribution.SetRoutingRulesRequest(
        rules=[distribution.RoutingRule(key="all_to_py_team", to_team="py-team")]
    ),
    metadata=auth,
)
print("rep", rep.rep_id, "in py-team; every lead routed there")

c = capture_grpc.CaptureServiceStub(grpc.insecure_channel(capture_at))
captured = c.CaptureLead(
    capture.CaptureLeadRequest(
        request_id="py-lead-1",
        email="hana@example.co.jp",
        first_name="Hana",
        last_name="Sato",
        company_name="Example KK",
        source=capture.LeadSource(channel="web_form", campaign="python"),
    ),
    metadata=auth,
)
lead_id = captured.lead.lead_id
assert captured.created, "a new lead"
for key, kind in [("py-1", capture.ACTIVITY_KIND_MEETING_BOOKED),
                  ("py-2", capture.ACTIVITY_KIND_FREE_TRIAL_STARTED)]:
    c.RecordActivity(
        capture.RecordActivityRequest(idempotency_key=key, lead_id=lead_id, kind=kind),
        metadata=auth,
    )
print("lead", lead_id, "captured with a booked meeting and a free trial")

q = qualification_grpc.QualificationServiceStub(grpc.insecure_channel(qualification_at))


def scored():
    try:
        s = q.GetScore(qualification.GetScoreRequest(lead_id=lead_id), metadata=auth)
    except grpc.RpcError:
        return None
    return s if s.stage == qualification.STAGE_MQL else None


score = eventually("the MQL", scored)
assert score.score == 50, f"25 + 25 points, got {score.score}"
print("score", score.score, "stage", qualification.Stage.Name(score.stage))


def assigned():
    try:
        e = d.ExplainAssignment(distribution.ExplainAssignmentRequest(lead_id=lead_id), metadata=auth)
    except grpc.RpcError:
        return None
    a = e.assignment
    return a if a.state == distribution.ASSIGNMENT_STATE_ASSIGNED else None


assignment = eventually("the assignment", assigned)
assert assignment.rep_id == rep.rep_id, (assignment.rep_id, rep.rep_id)
print("assigned to", assignment.rep_id)

r = reporting_grpc.ReportingServiceStub(grpc.insecure_channel(reporting_at))
start, end = Timestamp(), Timestamp()
start.FromSeconds(int(time.time()) - 3600)
end.FromSeconds(int(time.time()) + 3600)


def funnel():
    f = r.GetFunnel(reporting.GetFunnelRequest(start_time=start, end_time=end), metadata=auth)
    return f if f.leads == 1 and f.mqls == 1 else None


f = eventually("the funnel", funnel)
print("funnel: leads", f.leads, "MQLs", f.mqls)
print("lead flow walked")
