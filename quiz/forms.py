from __future__ import annotations

from django import forms

from quiz.models import NICKNAME_MAX_LENGTH, GameRound
from quiz.services import nickname_normalize


class StartForm(forms.Form):
    nickname = forms.CharField(
        required=False, max_length=NICKNAME_MAX_LENGTH, strip=True,
        help_text=f"Optional, up to {NICKNAME_MAX_LENGTH} characters; shown on the leaderboard.",
        widget=forms.TextInput(attrs={"autocomplete": "nickname", "placeholder": "e.g. EosinFan",
                                      "maxlength": NICKNAME_MAX_LENGTH}),
    )

    def clean_nickname(self) -> str:
        return nickname_normalize(self.cleaned_data.get("nickname", ""))


class AnswerForm(forms.Form):
    position = forms.IntegerField(min_value=1, max_value=1000, widget=forms.HiddenInput)
    answer = forms.ChoiceField(choices=GameRound.Answer.choices)
    confidence = forms.ChoiceField(choices=GameRound.Confidence.choices, initial=GameRound.Confidence.SURE,
                                   widget=forms.RadioSelect)
