"""The one exception type for problems with the user's input."""


class DlcpruneError(Exception):
    """Bad input or an impossible request, described in one line that says how to fix it.

    The command line prints the message as ``error: <message>`` and exits with status 2;
    anything else that escapes is a bug and keeps its traceback.
    """
