# The piezo buzzer on a PWM output (board.py builds the machine.PWM): a tone on or off.
from micropython import const

_DUTY_HALF = const(32768)  # a square wave: the loudest a piezo gets from PWM


class Buzzer:
    def __init__(self, pwm):
        self._pwm = pwm
        self.freq_hz = 0  # sounding now (0: silent), for the tests and the simulator
        pwm.duty_u16(0)

    def tone(self, freq_hz):
        self._pwm.freq(freq_hz)
        self._pwm.duty_u16(_DUTY_HALF)
        self.freq_hz = freq_hz

    def off(self):
        self._pwm.duty_u16(0)
        self.freq_hz = 0
