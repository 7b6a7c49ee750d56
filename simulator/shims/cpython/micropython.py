"""CPython stand-in for MicroPython's `micropython` module, so firmware imports unchanged."""


def const(value):
    # On the board const() folds into bytecode; here it is the value itself.
    return value


def native(func):
    return func


def viper(func):
    return func


def schedule(func, arg):
    func(arg)
    return True


def mem_info(*_args):
    pass


def heap_lock():
    return 0


def heap_unlock():
    return 0
