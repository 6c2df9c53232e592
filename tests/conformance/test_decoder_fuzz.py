"""The decoder fuzz (tests/fuzz/decoder_fuzz.py) in a child process with an address-space limit,
so unbounded memory is a failure, not a swapping machine. Budget: PROFTASK_FUZZ_DECODER_EXAMPLES
(default 2000) examples, a 10 s deadline each."""
import os
import resource
import subprocess
import sys


from tests.conformance.oracle import require_conformance

# bytes of address space for the child (numpy and protobuf included); the Go fold's runtime
# reserves ~1.6 GB of it on its first fold, untouched (VmSize, not RSS), for which 2 GB more
MEMORY_LIMIT = 5 * 1024**3
EXAMPLES = int(os.environ.get("PROFTASK_FUZZ_DECODER_EXAMPLES", "2000"))


def limit_memory():
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def test_mutated_profiles_are_decoded_or_refused():
    require_conformance()
    done = subprocess.run([sys.executable, "-m", "tests.fuzz.decoder_fuzz", "--examples", str(EXAMPLES)],
                          capture_output=True, text=True, timeout=900, preexec_fn=limit_memory)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-8000:]
    assert "decoder fuzz: ok" in done.stderr
