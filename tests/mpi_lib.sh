# mpi_lib.sh - sourced by the tests that run mpirun (not a test itself):
# skips (exit 77) without mpirun or an MPI build of grok, and sets up Open
# MPI for this machine. The caller sets GROK and GROK_SRC.

command -v mpirun >/dev/null || { echo "SKIP: no mpirun (apt-get install openmpi-bin libopenmpi-dev)"; exit 77; }
case "$("$GROK" run --mpi-stats --help 2>&1)" in
  *"built without MPI"*) echo "SKIP: grok built without MPI (-DGROK_MPI=OFF or no libopenmpi-dev)"; exit 77 ;;
esac
# Loopback only, no ssh; root needs Open MPI's consent.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_plm_rsh_agent=
export OMPI_MCA_btl=self,vader OMPI_MCA_btl_vader_single_copy_mechanism=none
# ranks waiting in a collective yield the core (more ranks than the 2 cores)
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_mpi_yield_when_idle=1
# Open MPI leaks by design at exit: LeakSanitizer is told to ignore its
# libraries, with full unwinding so that the suppressions see the MPI
# frames (matters only in the sanitizer build).
# use_tls=0: in a rank, LeakSanitizer's tracer reads a bogus dynamic-TLS
# range that Open MPI's dlopen()ed components leave in glibc's DTV and dies
# of SIGSEGV ("Tracer caught signal 11"). Not scanning TLS can only add
# reports (a block reachable only from TLS would count as leaked), never
# hide one.
export LSAN_OPTIONS="suppressions=$GROK_SRC/tests/lsan_mpi.supp:print_suppressions=0:use_tls=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}fast_unwind_on_malloc=0"
MPIRUN=(mpirun --allow-run-as-root --oversubscribe --bind-to none)
