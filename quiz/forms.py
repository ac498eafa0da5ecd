from __future__ import annotations

from django import forms

from quiz.models import NICKNAME_MAX_LENGTH
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
