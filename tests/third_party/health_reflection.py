# A third-party gRPC client (Python grpcio) against a running `baton up`: health and reflection on
# all five ports. Manual check, not part of CI:
#   pip install grpcio grpcio-health-checking grpcio-reflection
#   python3 tests/third_party/health_reflection.py
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

for port in range(50051, 50056):
    ch = grpc.insecure_channel(f"127.0.0.1:{port}")
    status = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service=""), timeout=5).status
    refl = reflection_pb2_grpc.ServerReflectionStub(ch)
    resp = next(refl.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5))
    names = sorted(s.name for s in resp.list_services_response.service)
    print(port, health_pb2.HealthCheckResponse.ServingStatus.Name(status), [n for n in names if n.startswith("baton")])
