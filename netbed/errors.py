"""The one kind of error a user sees: a single line that says what is wrong and what to do."""


class NetbedError(Exception):
    """A problem with the user's input or machine, reported as one line and exit code 2.

    Anything else that escapes is a bug in netbed and is allowed to show its traceback.
    """

    exit_code = 2


def exit_code_of(command, *args) -> int:
    """Run a command function the way the CLI does: a NetbedError is one line on stderr and exit 2."""
    import sys

    try:
        return command(*args)
    except NetbedError as exc:
        print(f"netbed: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("netbed: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `netbed … | head`: the reader left; nothing more to say
        sys.stderr.close()
        return 0
