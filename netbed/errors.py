"""The one kind of error a user sees: a single line that says what is wrong and what to do."""


class NetbedError(Exception):
    """A problem with the user's input or machine, reported as one line and exit code 2.

    Anything else that escapes is a bug in netbed and is allowed to show its traceback.
    """

    exit_code = 2
