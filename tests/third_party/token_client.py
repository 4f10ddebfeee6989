# A third-party gRPC client (Python grpcio) against one Baton service: without a token the call is
# UNAUTHENTICATED; with one it is served. Run by the e2e test `a_python_grpcio_client_*`:
#   python3 tests/third_party/token_client.py 127.0.0.1:50051 "$BATON_TOKEN"
# Needs grpcio only (pip install grpcio): the call sends an empty ListLeadsRequest as raw bytes,
# so no generated code is involved.
import sys

import grpc

target, token = sys.argv[1], sys.argv[2]
method = "/baton.capture.v1.CaptureService/ListLeads"
with grpc.insecure_channel(target) as channel:
    list_leads = channel.unary_unary(
        method, request_serializer=lambda b: b, response_deserializer=lambda b: b
    )
    try:
        list_leads(b"", timeout=10)
        sys.exit("a call without a token was served")
    except grpc.RpcError as e:
        if e.code() != grpc.StatusCode.UNAUTHENTICATED:
            sys.exit(f"without a token: {e.code()} {e.details()}")
        print("without a token:", e.code().name, "-", e.details())
    answer = list_leads(b"", timeout=10, metadata=[("authorization", f"Bearer {token}")])
    print("with a token: OK,", len(answer), "bytes")
