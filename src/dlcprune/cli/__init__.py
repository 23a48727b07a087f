"""``dlcprune score | select | prune | bench | finetune | instruct | lora | report | list | demo``.

parser.py builds the arguments, commands.py (and llm.py) run one library call per command, and
:func:`main` is the one error path: bad input ends with ``error: <one line>`` on stderr and exit
status 2, before any output is written.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import signal
import sys
import threading
import time

from ..errors import DlcpruneError
from .commands import COMMANDS
from .parser import EXIT_BAD_INPUT, build_parser


EXIT_BUG, EXIT_INTERRUPTED, EXIT_TERMINATED = 1, 130, 143
RESUMABLE = {"score", "prune", "bench", "demo"}  # the commands that checkpoint their slow work
DISTRIBUTED = {"score", "prune"}  # the commands that torchrun's processes share


def flag_names(message: str) -> str:
    """A library message names parameters; on the command line, say the flags."""
    message = re.sub(r"^(keep|dynamics|levels|sparsities|methods|step|epochs|weights|device|dynamics_epochs|mask_scope|image_size|indices|lr|head_lr|batch_size)\b",
                     lambda m: "--" + m.group(1).replace("_", "-"), message)
    for param, flag in (("max_length", "--max-length"), ("target_drop", "--target-drop"), ("val_fraction", "--val-fraction"),
                        ("candidates", "--candidates"), ("split (FlexRand's gamma)", "--split"),
                        ("test_data", "--test-data"), ("record_dynamics", "--record-dynamics"), ("trainer 'full'", "--trainer full"), ("trainer 'probe'", "--trainer probe"),
                        ("cannot read indices", "cannot read --indices")):
        message = re.sub(rf"(?<![-\w]){re.escape(param)}(?!\w)", flag, message)
    return message


class Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler or `kill`), handled like Ctrl-C: weights restored, checkpoints kept."""


def _stop(signum, frame) -> None:
    """SIGINT / SIGTERM: stop the main thread like Ctrl-C (weights restored, checkpoints kept)."""
    raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


STOPPED = threading.Event()  # set once main has handled a stop (read by the unraisable hook's timer)


def _raising_stops_again(unraisable, pid: int):
    """An unraisablehook: Python ignores an exception raised while a weakref callback runs (an
    import lock's, for one); a stop swallowed there is signalled again instead of printed. From a
    thread, 50 ms later: raised at once it would land inside this hook, where it is lost for good."""
    def signal_again(sig) -> None:
        if not STOPPED.is_set():  # the run has stopped meanwhile: a signal now would kill the process
            os.kill(pid, sig)

    def hook(u) -> None:
        if isinstance(u.exc_value, KeyboardInterrupt) and os.getpid() == pid:  # not in a forked worker
            sig = signal.SIGTERM if isinstance(u.exc_value, Terminated) else signal.SIGINT
            again = threading.Timer(0.05, signal_again, (sig,))
            again.daemon = True
            again.start()
        else:
            unraisable(u)
    return hook


def main(argv: list[str] | None = None) -> int:
    """Run one command. Exit status: 0 done; 2 bad input or a fault the user can fix (one ``error:``
    line: bad files or options, missing hardware, a full disk, permissions); 130 Ctrl-C; 143
    SIGTERM; 1 a bug (one line; ``--debug`` shows the traceback)."""
    args, previous, unraisable = None, {}, sys.unraisablehook
    STOPPED.clear()
    try:
        if _main_thread():  # signal handlers (and so this hook) belong to the main thread
            previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGTERM, signal.SIGINT)}
            sys.unraisablehook = _raising_stops_again(unraisable, os.getpid())
        args = build_parser().parse_args(argv)
        _run(args)
    except SystemExit as done:  # --help, or a usage error already printed as one line
        return int(done.code or 0)
    except DlcpruneError as err:  # library messages name parameters; here they become flags
        print(f"error: {flag_names(str(err))}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt as stop:
        STOPPED.set()
        what = "terminated (SIGTERM)" if isinstance(stop, Terminated) else "interrupted"
        again = ("finished work is kept. Run the same command again to resume." if getattr(args, "command", None) in RESUMABLE else
                 "this command keeps no checkpoint: run it again to start over.")
        print(f"{what}; nothing half-written was left and {again}", file=sys.stderr)
        return EXIT_TERMINATED if isinstance(stop, Terminated) else EXIT_INTERRUPTED
    except OSError as err:  # the machine, not the input: a full disk, a permission, a vanished file
        if getattr(args, "debug", False):
            raise
        print(f"error: {os_error_line(err)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as err:  # a bug: one line unless --debug
        if getattr(args, "debug", False):
            raise
        print(f"error: internal error ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}); "
              "run the same command with --debug for the traceback, and please report it", file=sys.stderr)
        return EXIT_BUG
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if previous:
            sys.unraisablehook = unraisable
        if (dist := _process_group()) is not None:  # launched by torchrun
            dist.destroy_process_group()
    return 0


def _run(args) -> None:
    """The parsed command, with its threads, logging and output form set up."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and args.command not in DISTRIBUTED:
        _every_rank_refuses(f"{args.command} runs in one process (every rank would write the same folder); "
                            "torchrun splits score and prune only: run it without torchrun")
    from ..threads import set_threads

    set_threads(args.threads)  # before torch is imported, so its thread pool starts at this size
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s",
                        stream=sys.stderr)
    if args.quiet:
        quiet_third_parties()
    if args.json:  # the summary alone on stdout; what a person reads goes to stderr
        started = time.perf_counter()
        with contextlib.redirect_stdout(sys.stderr):
            summary = COMMANDS[args.command](args)
        # every summary says how long the command took ("seconds"; lora's and finetune's: the training)
        summary.setdefault("seconds", round(time.perf_counter() - started, 3))
        print(json.dumps(summary, default=str))
    else:
        COMMANDS[args.command](args)
    _wait_for_other_ranks()


def _process_group():
    """``torch.distributed`` when a process group is up (torchrun), else None; only a run that imported
    torch can have one, so this never imports it."""
    dist = sys.modules.get("torch.distributed")
    return dist if dist is not None and dist.is_available() and dist.is_initialized() else None


def _every_rank_refuses(message: str) -> None:
    """Print ``error: message`` on every rank and exit 2. torchrun stops the other ranks as soon as one
    exits, so the ranks first join a (gloo) group and leave only once every one has printed."""
    from ..scoring.shard import init_from_environment

    init_from_environment("cpu")
    print(f"error: {message}", file=sys.stderr)
    _wait_for_other_ranks()
    raise SystemExit(EXIT_BAD_INPUT)


def _wait_for_other_ranks() -> None:
    """Under torchrun, leave only when every rank has finished: rank 0 still writes the outputs after the
    last gather, and a gloo peer that tears its connections down meanwhile can abort rank 0 at exit."""
    if (dist := _process_group()) is not None:
        dist.barrier()


def quiet_third_parties() -> None:
    """Silence the progress bars and notices of transformers, datasets, huggingface_hub and tqdm."""
    import warnings

    warnings.filterwarnings("ignore", category=FutureWarning)  # libraries' deprecation notices, not the user's to act on
    os.environ.update(TQDM_DISABLE="1", HF_DATASETS_DISABLE_PROGRESS_BARS="1", HF_HUB_DISABLE_PROGRESS_BARS="1",
                      TRANSFORMERS_VERBOSITY="error", TRANSFORMERS_NO_ADVISORY_WARNINGS="1")
    for module, call in (("transformers.utils.logging", "disable_progress_bar"),
                         ("datasets.utils.logging", "disable_progress_bar")):
        if module in sys.modules:  # already imported: environment variables came too late
            getattr(sys.modules[module], call)()


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def os_error_line(err: OSError) -> str:
    """One line for an operating-system error, with what to do about it."""
    import errno

    where = f" ({err.filename})" if err.filename else ""
    if err.errno == errno.ENOSPC:
        return (f"no space left on the device{where}; nothing half-written was kept: free some space and run the "
                "same command again (a scoring run resumes where each level stopped)")
    if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"permission denied{where}: make it readable / writable, or choose another path"
    return f"{err.strerror or err}{where}"
