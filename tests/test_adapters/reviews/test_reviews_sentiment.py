"""The sentiment lexicon on the reviews it is for, Chinese and English. A misjudged review
found in the wild gets a case here along with its lexicon entry."""

from __future__ import annotations

import pytest

from adapters.reviews.sentiment import analyse


@pytest.mark.parametrize(
    "text",
    [
        "垃圾软件，天天闪退，差评！",
        "客服不理人，退款要了三次",
        "千万别买，质量太差",
        "不太好用，更新后经常卡死",
        "界面好看，但是经常闪退",  # what follows 但是 weighs more
        "This app crashes every time I open it. Waste of money!",
        "Not good at all",
        "Doesn't work since the update, very disappointed",
        "It was ok but the ads are terrible",
        "😡😡 👎",
    ],
)
def test_negative(text):
    assert analyse(text).score < -0.2, text


@pytest.mark.parametrize(
    "text",
    [
        "不错，很好用",  # 不错 is one word: "not wrong" means good
        "快递很快，五星好评",
        "物超所值，强烈推荐",
        "没有问题，很满意",
        "Great app, love it",
        "Works great, highly recommend!",
        "not bad",
        "No problems at all, easy to use :)",
    ],
)
def test_positive(text):
    assert analyse(text).score > 0.2, text


@pytest.mark.parametrize(
    "text", ["", "订单号 4471", "I would like to know the price", "你好，请问几点发货"]
)
def test_neutral(text):
    result = analyse(text)
    assert abs(result.score) < 0.2 and result.estimated_rating() == 3, text


def test_negation_flips_and_boosters_strengthen():
    assert analyse("好").score > 0 > analyse("不好").score
    assert analyse("很好").score > analyse("好").score
    assert analyse("very good").score > analyse("good").score > 0 > analyse("not good").score
    assert analyse("bad!!!").score < analyse("bad").score


def test_estimated_ratings_span_one_to_five():
    assert analyse("垃圾软件，天天闪退，差评！").estimated_rating() == 1
    assert analyse("Great app, love it, works perfectly!").estimated_rating() == 5
    assert analyse("不太好").estimated_rating() == 2
